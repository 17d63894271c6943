package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// lldpMulticast is the nearest-bridge group address LLDP is sent to.
var lldpMulticast = [8]byte{0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e}

// ListenLLDP listens on the named interfaces at once, for at most timeout, and returns the
// TLVs of the first LLDP frame each one hears (interfaces that hear none within timeout are
// absent). It uses one AF_PACKET socket per interface bound to the LLDP EtherType and joins the
// LLDP multicast group instead of turning promiscuous mode on. An interface whose socket
// cannot be opened is reported in the error and the others are still listened on.
func ListenLLDP(ctx context.Context, names []string, timeout time.Duration) (map[string][]LLDPTLV, error) {
	out := map[string][]LLDPTLV{}
	type listener struct {
		name string
		fd   int
	}
	var ls []listener
	var errs []error
	defer func() {
		for _, l := range ls {
			if l.fd >= 0 {
				unix.Close(l.fd)
			}
		}
	}()
	proto := int(htons(LLDPEtherType))
	for _, name := range names {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("LLDP on %s: %w", name, err))
			continue
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, proto)
		if err != nil {
			errs = append(errs, fmt.Errorf("LLDP on %s: open packet socket: %w", name, err))
			continue
		}
		ls = append(ls, listener{name: name, fd: fd})
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(LLDPEtherType), Ifindex: ifc.Index}); err != nil {
			errs = append(errs, fmt.Errorf("LLDP on %s: bind: %w", name, err))
			continue
		}
		mreq := unix.PacketMreq{Ifindex: int32(ifc.Index), Type: unix.PACKET_MR_MULTICAST, Alen: 6, Address: lldpMulticast}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			errs = append(errs, fmt.Errorf("LLDP on %s: join the LLDP group: %w", name, err))
		}
	}
	deadline := time.Now().Add(timeout)
	buf := make([]byte, maxLLDPFrame)
	for {
		var pfds []unix.PollFd
		var idx []int
		for i, l := range ls {
			if _, done := out[l.name]; !done && l.fd >= 0 {
				pfds = append(pfds, unix.PollFd{Fd: int32(l.fd), Events: unix.POLLIN})
				idx = append(idx, i)
			}
		}
		left := time.Until(deadline)
		if len(pfds) == 0 || left <= 0 || ctx.Err() != nil {
			break
		}
		n, err := unix.Poll(pfds, int(min(left, 200*time.Millisecond)/time.Millisecond)+1)
		if err != nil && !errors.Is(err, unix.EINTR) {
			errs = append(errs, fmt.Errorf("LLDP: poll: %w", err))
			break
		}
		if n <= 0 {
			continue
		}
		for j, p := range pfds {
			if p.Revents == 0 {
				continue
			}
			l := &ls[idx[j]]
			for range 16 { // drain what is queued, bounded
				m, _, err := unix.Recvfrom(l.fd, buf, 0)
				if err != nil {
					if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
						errs = append(errs, fmt.Errorf("LLDP on %s: read: %w", l.name, err))
						unix.Close(l.fd)
						l.fd = -1
					}
					break
				}
				if tlvs, err := ParseLLDPFrame(buf[:m]); err == nil {
					out[l.name] = tlvs
					break
				}
			}
		}
	}
	return out, errors.Join(errs...)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
