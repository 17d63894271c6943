// Package netns opens sockets inside a named Linux network namespace (one made with
// `ip netns add`, bound at /run/netns/NAME) from a process that stays in its own. A socket
// keeps the namespace it was created in, so a server can answer DHCP, TFTP and HTTP boot
// requests on a lab's provisioning network while its API listens on the host's loopback.
// The package changes the namespace of one locked OS thread only, and moves it back before
// the thread runs any other goroutine.
package netns

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Dir is where iproute2 binds named network namespaces.
const Dir = "/run/netns"

// Do runs fn on an OS thread that has joined the network namespace name, and returns its
// error. An empty name runs fn in the caller's namespace. Sockets fn creates stay in the
// namespace; goroutines fn starts do not run there, so fn must create its sockets itself.
func Do(name string, fn func() error) error {
	if name == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			// Without a way back the thread stays locked, and ends with this goroutine.
			errc <- fmt.Errorf("open this thread's network namespace: %w", err)
			return
		}
		defer self.Close()
		f, err := os.Open(filepath.Join(Dir, name))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open network namespace %s: %w", name, err)
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("join network namespace %s: %w", name, err)
			return
		}
		err = fn()
		// Back to where the thread came from; only then may it run other goroutines. If
		// that fails the thread stays locked and the runtime ends it with this goroutine.
		if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// Listen is net.Listen inside the namespace name.
func Listen(ctx context.Context, name, network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := Do(name, func() error {
		var err error
		ln, err = (&net.ListenConfig{}).Listen(ctx, network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s %s in network namespace %q: %w", network, addr, name, err)
	}
	return ln, nil
}

// ListenPacket is net.ListenPacket inside the namespace name.
func ListenPacket(ctx context.Context, name, network, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := Do(name, func() error {
		var err error
		pc, err = (&net.ListenConfig{}).ListenPacket(ctx, network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s %s in network namespace %q: %w", network, addr, name, err)
	}
	return pc, nil
}

// Dialer returns a DialContext function whose connections are made inside the namespace
// name, for clients (tests, the lab) that talk to services on a namespace's addresses.
func Dialer(name string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := Do(name, func() error {
			var err error
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}
