package initsys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/insomniacslk/dhcp/netboot"
	"github.com/jsimonetti/rtnetlink/rtnl"
)

// routeOwner is the NIC whose lease sets the default route (and resolv.conf): the first to
// get a lease with a router.
type routeOwner struct {
	mu  sync.Mutex
	nic string
}

// claim reports whether nic owns the default route, taking it when nobody does.
func (r *routeOwner) claim(nic string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.nic == "" {
		r.nic = nic
	}
	return r.nic == nic
}

// leaseKeeper gets a NIC its lease and keeps it for the ramdisk's life. One goroutine owns it.
type leaseKeeper struct {
	nic    net.Interface
	cfg    NetworkConfig
	log    *slog.Logger
	routes *routeOwner
	xids   *xidSource
	client *dhcpClient
	lease  *nclient4.Lease
	addr   *net.IPNet // the address configured from lease
}

// start brings the link up and gets the first lease within cfg.DHCPWait.
func (k *leaseKeeper) start(ctx context.Context) (Lease, error) {
	k.log.Info("bringing link up")
	if err := linkUp(ctx, k.nic.Name, k.cfg.LinkWait); err != nil {
		return Lease{}, fmt.Errorf("link up: %w", err)
	}
	began := time.Now()
	k.log.Info("link up, sending DHCP discover")
	ctx, cancel := context.WithTimeout(ctx, k.cfg.DHCPWait)
	defer cancel()
	l, err := k.obtain(ctx)
	if err != nil {
		k.closeClient()
		return Lease{}, fmt.Errorf("dhcp: no lease within %s: %w", k.cfg.DHCPWait, err)
	}
	out, err := k.bind(l)
	if err != nil {
		k.closeClient()
		return Lease{}, err
	}
	k.log.Info("dhcp lease", logKeyAddr, out.Addr.String(), "server", out.Server, "took", time.Since(began).Round(time.Millisecond).String())
	return out, nil
}

// obtain runs DISCOVER until a server gives a lease or ctx ends.
func (k *leaseKeeper) obtain(ctx context.Context) (*nclient4.Lease, error) {
	for {
		var err error
		if k.client == nil {
			k.client, err = newDHCPClient(k.nic, k.xids)
		}
		var l *nclient4.Lease
		if err == nil {
			if l, err = k.client.obtain(ctx); err == nil {
				return l, nil
			}
		}
		if ctx.Err() != nil {
			return nil, err
		}
		k.log.Info("no DHCP answer yet", logKeyError, err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (k *leaseKeeper) closeClient() {
	if k.client != nil {
		k.client.Close()
		k.client = nil
	}
}

// keep renews, rebinds and re-acquires the lease until ctx ends.
func (k *leaseKeeper) keep(ctx context.Context) {
	defer k.closeClient()
	poll := time.NewTicker(k.cfg.LinkPoll)
	defer poll.Stop()
	wasUp := true
	for {
		phase, at := schedule(time.Now(), k.lease.CreationTime, timesOf(k.lease.ACK), k.cfg.MinRetry)
		switch phase {
		case phaseRenewing, phaseRebinding:
			l, err := k.client.extend(ctx, k.nic.Name, k.lease, phase == phaseRebinding)
			if err == nil {
				if _, err = k.bind(l); err == nil {
					k.log.Info("dhcp lease extended", "phase", phase.String(), logKeyAddr, k.addr.String())
					continue
				}
			}
			if ctx.Err() != nil {
				return
			}
			var nak *nclient4.ErrNak
			if errors.As(err, &nak) {
				k.log.Warn("the server refused to extend the lease; starting again", logKeyError, err)
				k.reacquire(ctx, "refused")
				continue
			}
			k.log.Warn("dhcp lease not extended yet", "phase", phase.String(), logKeyError, err)
			if phase, at = schedule(time.Now(), k.lease.CreationTime, timesOf(k.lease.ACK), k.cfg.MinRetry); phase == phaseExpired {
				continue
			}
		case phaseExpired:
			k.log.Warn("dhcp lease expired", logKeyAddr, k.addr.String())
			k.drop()
			k.reacquire(ctx, "expired")
			continue
		}
		var due <-chan time.Time
		var timer *time.Timer
		if !at.IsZero() {
			timer = time.NewTimer(time.Until(at))
			due = timer.C
		}
		select {
		case <-ctx.Done():
		case <-due:
		case <-poll.C:
			up := linkRunning(k.nic.Name)
			switch {
			case wasUp && !up:
				k.log.Warn("link down")
			case !wasUp && up:
				k.log.Info("link up again: asking for a new lease")
				k.reacquire(ctx, "link flap")
			}
			wasUp = up
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// reacquire gets a new lease from DISCOVER, on a new socket, trying until ctx ends.
func (k *leaseKeeper) reacquire(ctx context.Context, why string) {
	k.closeClient()
	for ctx.Err() == nil {
		l, err := k.obtain(ctx)
		if err == nil {
			if _, err = k.bind(l); err == nil {
				k.log.Info("dhcp lease", "after", why, logKeyAddr, k.addr.String(), "server", l.ACK.ServerIdentifier())
				return
			}
		}
		if ctx.Err() == nil {
			k.log.Warn("no new lease yet", "after", why, logKeyError, err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// bind configures the NIC from lease l and makes it the lease kept.
func (k *leaseKeeper) bind(l *nclient4.Lease) (Lease, error) {
	nc, err := netboot.GetNetConfFromPacketv4(l.ACK)
	if err != nil {
		return Lease{}, fmt.Errorf("dhcp answer: %w", err)
	}
	owner := len(nc.Routers) > 0 && k.routes.claim(k.nic.Name)
	if !owner {
		nc.Routers = nil
	}
	if err := k.configure(nc, owner); err != nil {
		return Lease{}, fmt.Errorf("configure: %w", err)
	}
	k.lease = l
	out := Lease{NIC: k.nic.Name, MAC: k.nic.HardwareAddr.String(), Addr: nc.Addresses[0].IPNet, Server: l.ACK.ServerIdentifier(), Source: SourceDHCPv4}
	if len(nc.Routers) > 0 {
		out.Router = nc.Routers[0]
	}
	return out, nil
}

// configure sets the lease's address on the NIC (replacing the previous lease's), and, for
// the route owner, the default route and resolv.conf.
func (k *leaseKeeper) configure(nc *netboot.NetConf, owner bool) error {
	rt, err := rtnl.Dial(nil)
	if err != nil {
		return err
	}
	defer rt.Close()
	ifc := &k.nic
	addr := nc.Addresses[0].IPNet
	if err := rt.AddrAdd(ifc, &addr); err != nil && !errors.Is(err, os.ErrExist) && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("add address %s: %w", addr.String(), err)
	}
	if k.addr != nil && k.addr.String() != addr.String() {
		if err := rt.AddrDel(ifc, k.addr); err != nil {
			k.log.Warn("remove the previous address", logKeyAddr, k.addr.String(), logKeyError, err)
		}
	}
	k.addr = &addr
	if !owner {
		return nil
	}
	if len(nc.Routers) > 0 {
		dst := net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}
		if err := rt.RouteReplace(ifc, dst, nc.Routers[0], rtnl.WithRouteSrc(&addr)); err != nil {
			return fmt.Errorf("default route via %s: %w", nc.Routers[0], err)
		}
	}
	if k.cfg.ResolvConf != "" && len(nc.DNSServers) > 0 {
		var b strings.Builder
		for _, ns := range nc.DNSServers {
			fmt.Fprintf(&b, "nameserver %s\n", ns)
		}
		if len(nc.DNSSearchList) > 0 {
			fmt.Fprintf(&b, "search %s\n", strings.Join(nc.DNSSearchList, " "))
		}
		if err := os.WriteFile(k.cfg.ResolvConf, []byte(b.String()), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", k.cfg.ResolvConf, err)
		}
	}
	return nil
}

// drop removes the address of an expired lease.
func (k *leaseKeeper) drop() {
	if k.addr == nil {
		return
	}
	rt, err := rtnl.Dial(nil)
	if err == nil {
		err = rt.AddrDel(&k.nic, k.addr)
		rt.Close()
	}
	if err != nil {
		k.log.Warn("remove the expired address", logKeyAddr, k.addr.String(), logKeyError, err)
	}
	k.addr = nil
}

// linkRunning reports whether the NIC's link is operationally up.
func linkRunning(name string) bool {
	ifc, err := net.InterfaceByName(name)
	return err == nil && ifc.Flags&net.FlagRunning != 0
}
