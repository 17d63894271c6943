// Package console serves one node's serial console on a TCP port, the way Ironic's socat
// console does (a raw byte stream, which Nova's serial console proxy and `telnet`/`nc` read):
// it keeps the serial line attached for as long as it runs (re-attaching with a bounded
// back-off when the BMC drops it), copies what the node writes to an optional log file and to
// at most one TCP client, and sends that client's keystrokes to the node. A second client is
// told the console is busy and disconnected. It knows nothing of nodes' records or drivers:
// the caller gives it a listener and the function that attaches the serial line.
package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// Attach connects to a serial line: bytes read from in go to the node, the node's output goes
// to out, until ctx ends, in is exhausted or the line fails.
type Attach func(ctx context.Context, in io.Reader, out io.Writer) error

// Config describes one served console.
type Config struct {
	// Name names the console in messages to clients and in logs (the node's UUID).
	Name string
	// Listener is where clients connect; Serve closes it when it returns.
	Listener net.Listener
	// Attach connects the serial line.
	Attach Attach
	// LogFile, when not empty, receives everything the node writes (appended).
	LogFile string
	// Log receives the session's events; nil discards them.
	Log *slog.Logger
	// RetryMin and RetryMax bound the wait before re-attaching a serial line that ended
	// (defaults 1 s and 30 s); the wait doubles after each attachment that lasted less than
	// RetryMax.
	RetryMin, RetryMax time.Duration
	// WriteTimeout bounds one write to the client (default 10 s); a client that reads slower
	// is disconnected rather than holding up the console log.
	WriteTimeout time.Duration
}

// BusyMessage is what a second client reads before it is disconnected.
const BusyMessage = "The console of node %s is in use by another client; only one client may be connected at a time.\r\n"

// session is the running state of a served console.
type session struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	client net.Conn       // the connected client, or nil
	input  *io.PipeWriter // the input of the current attachment, or nil
	file   *os.File
}

// Serve runs the console until ctx ends: it accepts clients on cfg.Listener and keeps the
// serial line attached. It returns nil when ctx ends, or an error when the log file cannot be
// opened or the listener fails.
func Serve(ctx context.Context, cfg Config) error {
	if cfg.Listener == nil || cfg.Attach == nil {
		return errors.New("serve console: a listener and an attach function are required")
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = time.Second
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(30*time.Second, cfg.RetryMin)
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	s := &session{cfg: cfg, log: cfg.Log}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	defer cfg.Listener.Close()
	if cfg.LogFile != "" {
		f, err := os.OpenFile(cfg.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("open console log: %w", err)
		}
		s.file = f
		defer f.Close()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.attachLoop(ctx)
	}()
	go func() {
		<-ctx.Done()
		cfg.Listener.Close()
	}()
	err := s.acceptLoop(ctx, &wg)
	cancel()
	s.dropClient(nil)
	wg.Wait()
	if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// acceptLoop takes clients until the listener closes: the first becomes the console's client,
// the others are told it is busy.
func (s *session) acceptLoop(ctx context.Context, wg *sync.WaitGroup) error {
	for {
		conn, err := s.cfg.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
				continue
			}
			return err
		}
		s.mu.Lock()
		busy := s.client != nil
		if !busy {
			s.client = conn
		}
		s.mu.Unlock()
		if busy {
			s.log.Info("console client refused: another is connected", "remote", conn.RemoteAddr().String())
			conn.SetWriteDeadline(time.Now().Add(time.Second))
			fmt.Fprintf(conn, BusyMessage, s.cfg.Name)
			conn.Close()
			continue
		}
		s.log.Info("console client connected", "remote", conn.RemoteAddr().String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.readClient(conn)
		}()
	}
}

// readClient sends a client's keystrokes to the current attachment until the client leaves.
func (s *session) readClient(conn net.Conn) {
	buf := make([]byte, 512)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			s.mu.Lock()
			in := s.input
			s.mu.Unlock()
			if in != nil {
				in.Write(buf[:n]) // a closed attachment drops the keystrokes, as a line without carrier
			}
		}
		if err != nil {
			break
		}
	}
	s.dropClient(conn)
}

// dropClient closes conn if it is the current client (any client when conn is nil).
func (s *session) dropClient(conn net.Conn) {
	s.mu.Lock()
	c := s.client
	if c != nil && (conn == nil || c == conn) {
		s.client = nil
	}
	s.mu.Unlock()
	if c != nil && (conn == nil || c == conn) {
		c.Close()
		s.log.Info("console client disconnected", "remote", c.RemoteAddr().String())
	}
	if conn != nil && c != conn {
		conn.Close()
	}
}

// attachLoop keeps the serial line attached until ctx ends.
func (s *session) attachLoop(ctx context.Context) {
	wait := s.cfg.RetryMin
	for ctx.Err() == nil {
		pr, pw := io.Pipe()
		s.mu.Lock()
		s.input = pw
		s.mu.Unlock()
		started := time.Now()
		// The input ends with ctx too, for a serial line that waits on it.
		stopInput := context.AfterFunc(ctx, func() { pw.Close() })
		err := s.cfg.Attach(ctx, pr, writerFunc(s.output))
		stopInput()
		s.mu.Lock()
		s.input = nil
		s.mu.Unlock()
		pw.Close()
		pr.Close()
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) >= s.cfg.RetryMax {
			wait = s.cfg.RetryMin
		}
		s.log.Warn("serial console detached; attaching again", "after", wait.String(), "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, s.cfg.RetryMax)
	}
}

// output writes what the node wrote to the log file and the client. It never fails: a client
// that cannot keep up is disconnected, a log file that fails is reported.
func (s *session) output(p []byte) (int, error) {
	s.mu.Lock()
	f, c := s.file, s.client
	s.mu.Unlock()
	if f != nil {
		if _, err := f.Write(p); err != nil {
			s.log.Warn("write console log", "error", err)
		}
	}
	if c != nil {
		c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		if _, err := c.Write(p); err != nil {
			s.log.Info("console client too slow or gone", "error", err)
			s.dropClient(c)
		}
	}
	return len(p), nil
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
