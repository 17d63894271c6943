package console_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ironwork/ironwork/internal/console"
)

// line is a fake serial line: each attachment writes a banner naming its number, then echoes
// what it reads upper-cased, until ctx ends or failAfter bytes were echoed (then it fails, as a
// BMC dropping the session).
type line struct {
	attaches  atomic.Int32
	failAfter int
}

func (l *line) attach(ctx context.Context, in io.Reader, out io.Writer) error {
	n := l.attaches.Add(1)
	fmt.Fprintf(out, "boot %d\r\n", n)
	buf := make([]byte, 64)
	echoed := 0
	for {
		k, err := in.Read(buf)
		if k > 0 {
			out.Write([]byte(strings.ToUpper(string(buf[:k]))))
			echoed += k
			if l.failAfter > 0 && echoed >= l.failAfter {
				return errors.New("the BMC dropped the session")
			}
		}
		if err != nil {
			return ctx.Err()
		}
	}
}

func serve(t *testing.T, l *line, logFile string) (addr string, stop func() error) {
	t.Helper()
	ln, err := console.Listen("127.0.0.1", console.PortRange{First: 20000 + os.Getpid()%20000, Last: 65000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- console.Serve(ctx, console.Config{Name: "node-1", Listener: ln, Attach: l.attach, LogFile: logFile,
			RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	}()
	// Keystrokes sent before the line is attached are dropped (a line without carrier): the
	// tests start typing once it is.
	for deadline := time.Now().Add(10 * time.Second); l.attaches.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the serial line was not attached within 10 s")
		}
	}
	var once atomic.Bool
	stop = func() error {
		if once.Swap(true) {
			return nil
		}
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			return errors.New("Serve did not return within 10 s of its context ending")
		}
	}
	t.Cleanup(func() { stop() })
	return ln.Addr().String(), stop
}

// readUntil reads from r until want appears (at most 10 s).
func readUntil(t *testing.T, c net.Conn, r *bufio.Reader, want string) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got strings.Builder
	for !strings.Contains(got.String(), want) {
		b, err := r.ReadByte()
		if err != nil {
			t.Fatalf("reading for %q: %v; got %q", want, err, got.String())
		}
		got.WriteByte(b)
	}
	return got.String()
}

func TestOneClientBothWaysAndLog(t *testing.T) {
	l := &line{}
	logFile := filepath.Join(t.TempDir(), "node-1.log")
	addr, stop := serve(t, l, logFile)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	c.Write([]byte("hello\r"))
	readUntil(t, c, r, "HELLO\r")

	// A second client is told the console is busy and disconnected.
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	msg, err := io.ReadAll(c2)
	c2.Close()
	if err != nil || string(msg) != fmt.Sprintf(console.BusyMessage, "node-1") {
		t.Fatalf("second client read %q, %v", msg, err)
	}
	// The first one still works.
	c.Write([]byte("again\r"))
	readUntil(t, c, r, "AGAIN\r")

	// When the first leaves, another may connect.
	c.Close()
	var c3 net.Conn
	var r3 *bufio.Reader
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c3, err = net.Dial("tcp", addr); err != nil {
			t.Fatal(err)
		}
		r3 = bufio.NewReader(c3)
		c3.Write([]byte("third\r"))
		c3.SetReadDeadline(time.Now().Add(2 * time.Second))
		s, _ := r3.ReadString('\r')
		if strings.Contains(s, "THIRD") {
			break
		}
		c3.Close()
		if time.Now().After(deadline) {
			t.Fatalf("a client connecting after the first left got %q", s)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Stopping the console closes the client's connection.
	c3.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(r3); err != nil {
		t.Fatalf("the client's connection was not closed cleanly: %v", err)
	}
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"boot 1\r\n", "HELLO\r", "AGAIN\r", "THIRD\r"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("console log lacks %q: %q", want, b)
		}
	}
}

func TestReattachAfterTheLineFails(t *testing.T) {
	l := &line{failAfter: 3}
	addr, _ := serve(t, l, "")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	c.Write([]byte("abc"))
	readUntil(t, c, r, "ABC")
	// The line failed after three bytes; the console attaches again and says so with the
	// next banner, without the client reconnecting.
	readUntil(t, c, r, "boot 2\r\n")
	if n := l.attaches.Load(); n < 2 {
		t.Fatalf("attached %d times", n)
	}
}

func TestListenSkipsTakenPorts(t *testing.T) {
	first, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	p := first.Addr().(*net.TCPAddr).Port
	if _, err := console.Listen("127.0.0.1", console.PortRange{First: p, Last: p}, nil); !errors.Is(err, console.ErrNoFreePort) {
		t.Fatalf("a range of one taken port gave %v", err)
	}
	if _, err := console.Listen("127.0.0.1", console.PortRange{First: p, Last: p}, func(int) bool { return true }); !errors.Is(err, console.ErrNoFreePort) {
		t.Fatalf("a range of one skipped port gave %v", err)
	}
}

func TestParsePortRange(t *testing.T) {
	for in, want := range map[string]string{"10000:20000": "10000:20000", " 1:1 ": "1:1"} {
		r, err := console.ParsePortRange(in)
		if err != nil || r.String() != want {
			t.Errorf("%q: %v, %v", in, r, err)
		}
	}
	for _, bad := range []string{"", "10000", "a:b", "2:1", "0:10", "1:65536", "1:2:3", "-1:5"} {
		if _, err := console.ParsePortRange(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

func FuzzParsePortRange(f *testing.F) {
	for _, s := range []string{"10000:20000", "1:65535", ":", "a:1", "99999999999999999999:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := console.ParsePortRange(s)
		if err != nil {
			return
		}
		if r.Validate() != nil {
			t.Fatalf("%q parsed into an invalid range %v", s, r)
		}
		back, err := console.ParsePortRange(r.String())
		if err != nil || back != r {
			t.Fatalf("%q: %v does not read back: %v, %v", s, r, back, err)
		}
	})
}
