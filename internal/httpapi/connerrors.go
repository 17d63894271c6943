package httpapi

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
)

// Some requests never reach a handler: net/http answers a header block over its limit (431), a
// malformed request line or Host header (400) and an unknown transfer coding (501) itself, in
// plain text, straight on the connection. ErrorListener wraps the API's listener so that these
// answers carry Ironic's JSON error body too.

// goErrorHeaders is what net/http puts between the status line and the body of the answers it
// writes without a handler. Handler responses never contain it: they carry a Date header, and
// net/http writes Connection before Content-Type.
const goErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// ErrorListener returns ln with every accepted connection rewriting net/http's plain-text
// error answers into Ironic's error format.
func ErrorListener(ln net.Listener) net.Listener { return errorListener{ln} }

type errorListener struct{ net.Listener }

func (l errorListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &errorConn{Conn: c}, nil
}

type errorConn struct{ net.Conn }

func (c *errorConn) Write(b []byte) (int, error) {
	status, msg, ok := parsePlainError(b)
	if !ok {
		return c.Conn.Write(b)
	}
	if status == http.StatusRequestHeaderFieldsTooLarge {
		msg = "The request's header fields are larger than the server accepts."
	}
	body := errorBody(status, msg)
	var out bytes.Buffer
	out.WriteString("HTTP/1.1 " + strconv.Itoa(status) + " " + http.StatusText(status))
	out.WriteString("\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\nConnection: close\r\n\r\n")
	out.Write(body)
	if _, err := c.Conn.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(b), nil
}

// CloseWrite half-closes the connection when the wrapped one can, as net/http does after an
// oversize header so that the client reads the answer before the connection goes away.
func (c *errorConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom keeps the wrapped connection's fast path (sendfile) for response bodies; net/http's
// own error answers never take it.
func (c *errorConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// parsePlainError recognises an answer net/http wrote without a handler and returns its status
// and text.
func parsePlainError(b []byte) (int, string, bool) {
	rest, ok := bytes.CutPrefix(b, []byte("HTTP/1.1 "))
	if !ok || len(rest) < 4 || rest[3] != ' ' {
		return 0, "", false
	}
	status, err := strconv.Atoi(string(rest[:3]))
	if err != nil || status < 400 {
		return 0, "", false
	}
	_, text, ok := bytes.Cut(rest, []byte(goErrorHeaders))
	if !ok {
		return 0, "", false
	}
	return status, string(text), true
}
