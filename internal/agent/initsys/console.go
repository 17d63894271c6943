package initsys

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Console prints progress lines for the operator watching the node's screen or serial port.
// It is safe for concurrent use.
type Console struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

// NewConsole returns a console writing to w.
func NewConsole(w io.Writer) *Console { return &Console{w: w, start: time.Now()} }

// OpenConsole opens /dev/console (or /dev/ttyS0, else falls back to stderr) and, when
// attachStdio is set, makes it the process's stdin, stdout and stderr too, so that anything
// the runtime prints reaches the screen. Call it after /dev is mounted.
func OpenConsole(attachStdio bool) *Console {
	for _, name := range []string{"/dev/console", "/dev/ttyS0"} {
		f, err := os.OpenFile(name, os.O_RDWR|unix.O_NOCTTY, 0)
		if err != nil {
			continue
		}
		if attachStdio {
			for fd := 0; fd <= 2; fd++ {
				_ = unix.Dup3(int(f.Fd()), fd, 0)
			}
		}
		return NewConsole(f)
	}
	return NewConsole(os.Stderr)
}

// Printf prints one line, prefixed with the seconds since the console was opened.
func (c *Console) Printf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.w, "[%7.1f] ironwork-agent: %s\r\n", time.Since(c.start).Seconds(), fmt.Sprintf(format, args...))
}

// Write lets the console take a logger's output (one line per write).
func (c *Console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.w.Write(p)
}
