package console

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
)

// PortRange is the TCP ports consoles may listen on: First to Last, both included.
type PortRange struct{ First, Last int }

// DefaultPortRange is the range used when none is configured (Ironic's sample, 10000:20000).
var DefaultPortRange = PortRange{First: 10000, Last: 20000}

// ParsePortRange reads Ironic's [console]port_range form "START:STOP".
func ParsePortRange(s string) (PortRange, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return PortRange{}, fmt.Errorf("console port range %q is not START:STOP", s)
	}
	first, err1 := strconv.Atoi(a)
	last, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil {
		return PortRange{}, fmt.Errorf("console port range %q is not START:STOP with two port numbers", s)
	}
	r := PortRange{First: first, Last: last}
	return r, r.Validate()
}

// Validate checks that the range holds ports and is not reversed.
func (r PortRange) Validate() error {
	if r.First < 1 || r.Last > 65535 || r.First > r.Last {
		return fmt.Errorf("console port range %d:%d is not within 1:65535 with START <= STOP", r.First, r.Last)
	}
	return nil
}

// String gives the range in the form ParsePortRange reads.
func (r PortRange) String() string { return fmt.Sprintf("%d:%d", r.First, r.Last) }

// ErrNoFreePort is returned when every port of the range is taken.
var ErrNoFreePort = errors.New("no free console port")

// Listen opens a TCP listener on address at the first port of r that skip does not reject
// and that nothing else holds.
func Listen(address string, r PortRange, skip func(port int) bool) (net.Listener, error) {
	for p := r.First; p <= r.Last; p++ {
		if skip != nil && skip(p) {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(address, strconv.Itoa(p)))
		if err == nil {
			return ln, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("listen for the console on %s: %w", net.JoinHostPort(address, strconv.Itoa(p)), err)
		}
	}
	return nil, fmt.Errorf("%w in %s on %s", ErrNoFreePort, r, address)
}

// URL is a console's address as Ironic's socat console gives it: tcp://HOST:PORT.
func URL(host string, port int) string {
	return "tcp://" + net.JoinHostPort(host, strconv.Itoa(port))
}
