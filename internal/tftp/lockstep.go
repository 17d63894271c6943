package tftp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// pollSlice bounds one blocking wait of a lock-step transfer, so that a cancelled context is
// seen within it.
const pollSlice = 200 * time.Millisecond

// blockingReader reads a transfer's replies by blocking its own OS thread in poll(2) and
// recv(2) on the socket, bypassing Go's network poller. In lock-step (one block per round
// trip) the wake-up path is the transfer's cost: through the poller an ACK wakes the
// poller's thread, which readies the goroutine, which a scheduler thread then runs; a thread
// blocked in poll is woken by the kernel directly, as a C server's recvfrom is. The goroutine
// is locked to its thread for the transfer's life (see lockThread).
type blockingReader struct {
	raw syscall.RawConn
}

func newBlockingReader(c *net.UDPConn) (*blockingReader, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("raw socket of transfer: %w", err)
	}
	return &blockingReader{raw: raw}, nil
}

// lockThread pins the calling goroutine to its OS thread and returns the unlock.
func lockThread() func() {
	runtime.LockOSThread()
	return runtime.UnlockOSThread
}

// read receives one datagram into b before deadline. It returns errDeadline when none came,
// and ctx's error once ctx is done.
func (r *blockingReader) read(ctx context.Context, b []byte, deadline time.Time) (int, error) {
	var n int
	var rerr error
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return 0, errDeadline
		}
		wait = min(wait, pollSlice)
		got := false
		err := r.raw.Control(func(fd uintptr) {
			// Try the socket first: in lock-step the ACK is often already there.
			n, rerr = unix.Read(int(fd), b)
			if rerr == nil {
				got = true
				return
			}
			if !errors.Is(rerr, unix.EAGAIN) {
				got = true
				return
			}
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			ready, perr := unix.Poll(fds, int(wait.Milliseconds())+1)
			if perr != nil && !errors.Is(perr, unix.EINTR) {
				rerr, got = perr, true
				return
			}
			if ready > 0 {
				n, rerr = unix.Read(int(fd), b)
				got = rerr == nil || !errors.Is(rerr, unix.EAGAIN)
			}
		})
		if err != nil {
			return 0, fmt.Errorf("read reply: %w", err)
		}
		if got {
			if rerr != nil {
				if errors.Is(rerr, unix.ECONNREFUSED) {
					return 0, fmt.Errorf("client port closed: %w", rerr)
				}
				return 0, fmt.Errorf("read reply: %w", rerr)
			}
			return n, nil
		}
	}
}
