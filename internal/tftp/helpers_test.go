package tftp

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testServer is a Server on a loopback socket, stopped at cleanup.
type testServer struct {
	srv  *Server
	addr *net.UDPAddr
	done chan error

	mu    sync.Mutex
	infos []TransferInfo
	seen  chan TransferInfo
}

// startServer serves dir with cfg on listen ("127.0.0.1:0" when empty; "udp4 0.0.0.0:0" picks
// the network too).
func startServer(t *testing.T, dir string, cfg Config, listen string) *testServer {
	t.Helper()
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	ts := &testServer{done: make(chan error, 1), seen: make(chan TransferInfo, 1024)}
	user := cfg.OnTransfer
	cfg.OnTransfer = func(i TransferInfo) {
		ts.mu.Lock()
		ts.infos = append(ts.infos, i)
		ts.mu.Unlock()
		select {
		case ts.seen <- i:
		default:
		}
		if user != nil {
			user(i)
		}
	}
	level := slog.LevelInfo
	if testing.Verbose() {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
	srv, err := NewDir(dir, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	network := "udp"
	if n, addr, ok := strings.Cut(listen, " "); ok { // "udp4 0.0.0.0:0"
		network, listen = n, addr
	}
	conn, err := net.ListenPacket(network, listen)
	if err != nil {
		t.Skipf("listen on %s: %v", listen, err)
	}
	ts.srv, ts.addr = srv, conn.LocalAddr().(*net.UDPAddr)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { ts.done <- srv.Serve(ctx, conn) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-ts.done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return 10s after its context ended")
		}
		conn.Close()
	})
	return ts
}

// port is the server's port as a string, for command lines.
func (ts *testServer) port() string {
	return strings.TrimPrefix(ts.addr.AddrPort().String(), "127.0.0.1:")
}

// waitInfo waits for the next OnTransfer call.
func (ts *testServer) waitInfo(t *testing.T, within time.Duration) TransferInfo {
	t.Helper()
	select {
	case i := <-ts.seen:
		return i
	case <-time.After(within):
		t.Fatalf("no transfer reported within %s", within)
		return TransferInfo{}
	}
}

// testWriter sends log lines to t.Log; lines after the test ends are dropped.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	defer func() { recover() }() // t.Log after the test returned panics
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// writeFile writes size pseudo-random bytes (seeded, so failures repeat) to dir/name.
func writeFile(t testing.TB, dir, name string, size int) []byte {
	t.Helper()
	r := rand.New(rand.NewChaCha8([32]byte{byte(size), byte(size >> 8), byte(size >> 16)}))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// rawClient is a TFTP client on a raw UDP socket that the test drives packet by packet.
type rawClient struct {
	t      *testing.T
	conn   *net.UDPConn
	server *net.UDPAddr // the listening port
	peer   *net.UDPAddr // the transfer's port, learnt from the first reply
}

func newRawClient(t *testing.T, server *net.UDPAddr) *rawClient {
	t.Helper()
	local := "127.0.0.1:0"
	if server.IP.To4() == nil {
		local = "[::1]:0"
	}
	laddr, _ := net.ResolveUDPAddr("udp", local)
	conn, err := net.ListenUDP("udp", laddr)
	if err != nil && laddr.IP.To4() == nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawClient{t: t, conn: conn, server: server}
}

// request sends a request packet to the listening port.
func (c *rawClient) request(p []byte) {
	c.t.Helper()
	if _, err := c.conn.WriteToUDP(p, c.server); err != nil {
		c.t.Fatal(err)
	}
}

// send sends p to the transfer's port.
func (c *rawClient) send(p []byte) {
	c.t.Helper()
	if c.peer == nil {
		c.t.Fatal("send before the server answered")
	}
	if _, err := c.conn.WriteToUDP(p, c.peer); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) ack(block uint16) { c.send([]byte{0, byte(opACK), byte(block >> 8), byte(block)}) }

// packet is a received datagram, decoded enough for the tests.
type packet struct {
	op    uint16
	block uint16 // DATA
	data  []byte // DATA payload
	code  uint16 // ERROR
	msg   string // ERROR
	opts  map[string]string
	from  *net.UDPAddr
}

var errNothing = errors.New("nothing received")

// recv returns the next datagram within d, or errNothing.
func (c *rawClient) recv(d time.Duration) (packet, error) {
	c.t.Helper()
	buf := make([]byte, 70000)
	c.conn.SetReadDeadline(time.Now().Add(d))
	n, from, err := c.conn.ReadFromUDP(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return packet{}, errNothing
		}
		return packet{}, err
	}
	if c.peer == nil {
		c.peer = from
	}
	p := buf[:n]
	if n < 2 {
		c.t.Fatalf("datagram of %d bytes", n)
	}
	pk := packet{op: binary.BigEndian.Uint16(p), from: from}
	switch pk.op {
	case opDATA:
		pk.block = binary.BigEndian.Uint16(p[2:])
		pk.data = append([]byte(nil), p[4:]...)
	case opERROR:
		r, err := parseReply(p)
		if err != nil {
			c.t.Fatalf("bad ERROR packet %q: %v", p, err)
		}
		pk.code, pk.msg = r.code, r.msg
	case opOACK:
		fields, err := splitStrings(p[2:])
		if err != nil || len(fields)%2 != 0 {
			c.t.Fatalf("bad OACK %q", p)
		}
		pk.opts = map[string]string{}
		for i := 0; i < len(fields); i += 2 {
			pk.opts[fields[i]] = fields[i+1]
		}
	default:
		c.t.Fatalf("unexpected opcode %d from the server", pk.op)
	}
	return pk, nil
}

// must is recv that fails the test when nothing comes.
func (c *rawClient) must(d time.Duration) packet {
	c.t.Helper()
	p, err := c.recv(d)
	if err != nil {
		c.t.Fatalf("waiting %s for a packet: %v", d, err)
	}
	return p
}

// get fetches name with opts (name, value pairs) as a well-behaved RFC 7440 client and returns
// the file and the acknowledged options.
func (c *rawClient) get(name string, opts ...string) ([]byte, map[string]string) {
	c.t.Helper()
	c.request(rrq(opRRQ, name, "octet", opts...))
	blksize, window := 512, 1
	p := c.must(5 * time.Second)
	var oack map[string]string
	if p.op == opOACK {
		oack = p.opts
		if v, ok := oack["blksize"]; ok {
			blksize = atoi(c.t, v)
		}
		if v, ok := oack["windowsize"]; ok {
			window = atoi(c.t, v)
		}
		c.ack(0)
		p = c.must(5 * time.Second)
	}
	var out []byte
	next, inWindow := uint16(1), 0
	for {
		if p.op != opDATA {
			c.t.Fatalf("got opcode %d (%d %q), want DATA %d", p.op, p.code, p.msg, next)
		}
		if p.block == next {
			out = append(out, p.data...)
			inWindow++
			if len(p.data) < blksize {
				c.ack(next)
				return out, oack
			}
			if inWindow == window {
				c.ack(next)
				inWindow = 0
			}
			next++
		}
		p = c.must(5 * time.Second)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, ok := parseUint(s)
	if !ok {
		t.Fatalf("bad number %q", s)
	}
	return int(n)
}
