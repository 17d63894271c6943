package dhcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// RAConfig configures a RouterAdvertiser. Zero durations take defaults.
type RAConfig struct {
	Interface string
	// FastInterval is the period of the first FastCount advertisements
	// (default 3 s, 20 times); then Interval (default 30 s).
	FastInterval time.Duration
	FastCount    int
	Interval     time.Duration
	// MinReplyGap bounds answers to router solicitations (default 200 ms).
	MinReplyGap time.Duration
	// Managed sets the M flag (addresses from DHCPv6: stateful mode) and
	// Other the O flag (other configuration from DHCPv6: both modes).
	Managed, Other bool
	// Prefix, when set, is the advertised prefix instead of the /64 of the
	// interface's first global or unique-local address.
	Prefix netip.Prefix
	// NoAutonomous clears the prefix's A flag: hosts take no SLAAC address
	// (stateful DHCPv6 hands them out).
	NoAutonomous bool
}

// RouterAdvertiser sends IPv6 router advertisements on the provisioning
// interface, periodically and in answer to router solicitations, so that
// iPXE (which otherwise waits about 16 s for IPv6 autoconfiguration) goes
// on at once. Its router lifetime is 0: it is not a default router. It
// carries a /64 prefix (on-link, autonomous) taken from the interface's
// first non-link-local IPv6 address, or no prefix. With a DHCPv6 server on
// the network its flags say which mode it runs: Managed (and Other) for
// stateful, Other with an autonomous prefix for stateless.
type RouterAdvertiser struct {
	cfg RAConfig
	log *slog.Logger
}

// NewRouterAdvertiser returns a RouterAdvertiser for cfg.
func NewRouterAdvertiser(cfg RAConfig, log *slog.Logger) (*RouterAdvertiser, error) {
	if cfg.Interface == "" {
		return nil, errors.New("router advertiser: interface is required")
	}
	if cfg.FastInterval <= 0 {
		cfg.FastInterval = 3 * time.Second
	}
	if cfg.FastCount <= 0 {
		cfg.FastCount = 20
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.MinReplyGap <= 0 {
		cfg.MinReplyGap = 200 * time.Millisecond
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &RouterAdvertiser{cfg: cfg, log: log}, nil
}

// allRouters is where router solicitations go.
var allRouters = netip.MustParseAddr("ff02::2")

// Serve advertises until ctx is cancelled and then returns nil. It reads the
// interface and opens its socket on the calling goroutine (retrying every
// 500 ms while the link-local address is not yet usable, e.g. during DAD),
// so a caller may run it on a thread set into a network namespace.
func (r *RouterAdvertiser) Serve(ctx context.Context) error {
	ifi, prefix, err := raInterface(r.cfg.Interface)
	if err != nil {
		return err
	}
	if r.cfg.Prefix.IsValid() {
		prefix = r.cfg.Prefix
	}
	var conn *ndp.Conn
	for {
		var lerr error
		if conn, _, lerr = ndp.Listen(ifi, ndp.LinkLocal); lerr == nil {
			break
		}
		r.log.DebugContext(ctx, "router advertiser: waiting for link-local address", keyIface, ifi.Name, keyErr, lerr)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(500 * time.Millisecond):
		}
	}
	var filter ipv6.ICMPFilter
	filter.SetAll(true)
	filter.Accept(ipv6.ICMPTypeRouterSolicitation)
	if err := conn.SetICMPFilter(&filter); err != nil {
		conn.Close()
		return fmt.Errorf("router advertiser: set ICMP filter: %w", err)
	}
	if err := conn.JoinGroup(allRouters); err != nil {
		conn.Close()
		return fmt.Errorf("router advertiser: join ff02::2: %w", err)
	}
	ra := r.message(ifi, prefix)
	r.log.InfoContext(ctx, "router advertiser serving", keyIface, ifi.Name, keyPrefix, prefix.String(),
		"managed", r.cfg.Managed, "other", r.cfg.Other, "autonomous", !r.cfg.NoAutonomous)

	solicits := make(chan netip.Addr, 1)
	var wg sync.WaitGroup
	wg.Go(func() { r.readSolicits(conn, solicits) })
	defer wg.Wait()
	defer conn.Close()

	send := func(dst netip.Addr) {
		if err := conn.WriteTo(ra, nil, dst); err != nil {
			r.log.DebugContext(ctx, "router advertiser: send", keyPeer, dst.String(), keyErr, err)
		}
	}
	send(netip.IPv6LinkLocalAllNodes())
	sent := 1
	timer := time.NewTimer(r.cfg.FastInterval)
	defer timer.Stop()
	var lastReply time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
			send(netip.IPv6LinkLocalAllNodes())
			sent++
			next := r.cfg.Interval
			if sent < r.cfg.FastCount {
				next = r.cfg.FastInterval
			}
			timer.Reset(next)
		case src, ok := <-solicits:
			if !ok {
				return nil
			}
			if time.Since(lastReply) < r.cfg.MinReplyGap {
				continue
			}
			lastReply = time.Now()
			dst := netip.IPv6LinkLocalAllNodes()
			if src.IsValid() && !src.IsUnspecified() {
				dst = src
			}
			send(dst)
		}
	}
}

// readSolicits passes the sources of router solicitations to out (dropping
// them while one is pending) until conn is closed, then closes out.
func (r *RouterAdvertiser) readSolicits(conn *ndp.Conn, out chan<- netip.Addr) {
	defer close(out)
	for {
		m, _, src, err := conn.ReadFrom()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			r.log.Debug("router advertiser: read", keyErr, err)
			return
		}
		if _, ok := m.(*ndp.RouterSolicitation); !ok {
			continue
		}
		select {
		case out <- src:
		default:
		}
	}
}

func (r *RouterAdvertiser) message(ifi *net.Interface, prefix netip.Prefix) *ndp.RouterAdvertisement {
	ra := &ndp.RouterAdvertisement{
		CurrentHopLimit:      64,
		RouterLifetime:       0, // not a default router
		ManagedConfiguration: r.cfg.Managed,
		OtherConfiguration:   r.cfg.Other || r.cfg.Managed,
	}
	if prefix.IsValid() {
		ra.Options = append(ra.Options, &ndp.PrefixInformation{
			PrefixLength:                   uint8(prefix.Bits()),
			OnLink:                         true,
			AutonomousAddressConfiguration: !r.cfg.NoAutonomous,
			ValidLifetime:                  24 * time.Hour,
			PreferredLifetime:              4 * time.Hour,
			Prefix:                         prefix.Addr(),
		})
	}
	if len(ifi.HardwareAddr) == 6 {
		ra.Options = append(ra.Options, &ndp.LinkLayerAddress{Direction: ndp.Source, Addr: ifi.HardwareAddr})
	}
	return ra
}

// raInterface returns the interface and the /64 of its first global or
// unique-local IPv6 address (the zero Prefix if it has none).
func raInterface(name string) (*net.Interface, netip.Prefix, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, netip.Prefix{}, fmt.Errorf("router advertiser interface %q: %w", name, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, netip.Prefix{}, fmt.Errorf("addresses of %q: %w", name, err)
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.To4() != nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok || ip.IsLinkLocalUnicast() || ip.IsLoopback() || ip.IsMulticast() {
			continue
		}
		p, err := ip.Prefix(64)
		if err != nil {
			continue
		}
		return ifi, p, nil
	}
	return ifi, netip.Prefix{}, nil
}
