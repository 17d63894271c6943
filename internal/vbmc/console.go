package vbmc

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"github.com/bougou/go-ipmi/pkg/hal"
)

// socketConsole is a machine's serial line as a unix socket, such as the one QEMU serves with
// "-serial unix:PATH,server=on,wait=off"; Serial-over-LAN sessions attach to it.
//
// Like a real BMC's serial port, the line exists whether or not the machine runs: a session
// activated while the machine is off reads nothing, and the line connects to the socket as
// soon as QEMU serves it (after a power on), and again after QEMU went away and came back (a
// power cycle), without the session ending.
type socketConsole struct{ path string }

var _ hal.ConsoleHAL = socketConsole{}

// redialEvery bounds how often a line without a machine tries the socket again.
const redialEvery = 200 * time.Millisecond

// Open implements hal.ConsoleHAL.
func (s socketConsole) Open(ctx context.Context) (hal.ConsoleConn, error) {
	l := &serialLine{path: s.path}
	l.dial(ctx)
	return l, nil
}

// serialLine is an open serial line: the socket when the machine serves it, silence when not.
type serialLine struct {
	path string

	mu       sync.Mutex
	conn     *net.UnixConn // nil while the machine does not serve its socket
	lastDial time.Time
	closed   bool
}

// dial connects to the socket if it is not connected and the last attempt is old enough.
// l.mu must not be held.
func (l *serialLine) dial(ctx context.Context) *net.UnixConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil || l.closed || time.Since(l.lastDial) < redialEvery {
		return l.conn
	}
	l.lastDial = time.Now()
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	c, err := d.DialContext(dctx, "unix", l.path)
	if err == nil {
		l.conn = c.(*net.UnixConn)
	}
	return l.conn
}

// drop forgets a connection that failed (the machine went away).
func (l *serialLine) drop(c *net.UnixConn) {
	l.mu.Lock()
	if l.conn == c {
		l.conn = nil
	}
	l.mu.Unlock()
	c.Close()
}

// ReadAvailable implements hal.ConsoleConn: it returns what the machine has written so far,
// without waiting for more; nothing while the machine does not run.
func (l *serialLine) ReadAvailable(p []byte) (int, error) {
	c := l.dial(context.Background())
	if c == nil {
		return 0, nil
	}
	c.SetReadDeadline(time.Now().Add(time.Millisecond))
	n, err := c.Read(p)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		l.drop(c)
		return n, nil
	}
	return n, nil
}

// Write implements hal.ConsoleConn: keystrokes reach the machine when it runs and are lost
// when it does not, as on a serial cable without a peer.
func (l *serialLine) Write(p []byte) (int, error) {
	c := l.dial(context.Background())
	if c == nil {
		return len(p), nil
	}
	c.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := c.Write(p); err != nil {
		l.drop(c)
	}
	return len(p), nil
}

// Close implements hal.ConsoleConn.
func (l *serialLine) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.conn != nil {
		err := l.conn.Close()
		l.conn = nil
		return err
	}
	return nil
}

// SendBreak implements hal.ConsoleConn; a socket has no break condition to send.
func (*serialLine) SendBreak(context.Context) error { return nil }
