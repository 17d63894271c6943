package vbmc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/bougou/go-ipmi/pkg/hal"
)

// socketConsole is a machine's serial line as a unix socket, such as the one QEMU serves with
// "-serial unix:PATH,server=on,wait=off"; Serial-over-LAN sessions attach to it.
type socketConsole struct{ path string }

var _ hal.ConsoleHAL = socketConsole{}

// Open implements hal.ConsoleHAL.
func (s socketConsole) Open(ctx context.Context) (hal.ConsoleConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", s.path)
	if err != nil {
		return nil, fmt.Errorf("attach to the serial console at %s: %w", s.path, err)
	}
	return socketConn{c.(*net.UnixConn)}, nil
}

// socketConn is an open serial line.
type socketConn struct{ *net.UnixConn }

// ReadAvailable implements hal.ConsoleConn: it returns what the machine has written so far,
// without waiting for more.
func (c socketConn) ReadAvailable(p []byte) (int, error) {
	c.SetReadDeadline(time.Now().Add(time.Millisecond))
	n, err := c.Read(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return n, nil
	}
	return n, err
}

// SendBreak implements hal.ConsoleConn; a socket has no break condition to send.
func (c socketConn) SendBreak(context.Context) error { return nil }
