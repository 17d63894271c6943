package initsys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/netboot"
)

// Lease is the IPv4 configuration one NIC got from DHCP.
type Lease struct {
	NIC    string
	MAC    string
	Addr   net.IPNet
	Router net.IP // nil when the server gave none, or another NIC holds the default route
	Server net.IP // the DHCP server
}

// NetworkConfig bounds the network bring-up.
type NetworkConfig struct {
	NICWait  time.Duration // how long to wait for the first NIC to appear (drivers probing)
	LinkWait time.Duration // per NIC: how long to wait for the link to come up
	DHCPWait time.Duration // per NIC: how long to try DHCP for the first lease
	// ResolvConf is where the DNS servers of the default route's lease are written; empty
	// writes nothing.
	ResolvConf string
	// LinkPoll is how often the link state is read, to see a flap (down, then up) and ask for
	// a new lease after it.
	LinkPoll time.Duration
	// MinRetry is the least pause between renew (rebind) attempts: RFC 2131's 60 s.
	MinRetry time.Duration
}

// DefaultNetworkConfig returns the bounds used in the ramdisk.
func DefaultNetworkConfig() NetworkConfig {
	return NetworkConfig{NICWait: 30 * time.Second, LinkWait: 15 * time.Second, DHCPWait: 60 * time.Second,
		ResolvConf: "/etc/resolv.conf", LinkPoll: time.Second, MinRetry: 60 * time.Second}
}

// physicalNICs are the non-loopback interfaces with an Ethernet MAC, sorted by name.
func physicalNICs() ([]net.Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	var out []net.Interface
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback != 0 || len(ifc.HardwareAddr) != 6 {
			continue
		}
		out = append(out, ifc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// WaitForNICs waits until at least one NIC exists, then gives the other drivers two more
// seconds to register theirs, all within cfg.NICWait.
func WaitForNICs(ctx context.Context, wait time.Duration) ([]net.Interface, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var settle <-chan time.Time
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		nics, err := physicalNICs()
		if err != nil {
			return nil, err
		}
		if len(nics) > 0 && settle == nil {
			settle = time.After(2 * time.Second)
		}
		select {
		case <-ctx.Done():
			if len(nics) > 0 {
				return nics, nil
			}
			return nil, fmt.Errorf("wait for network interfaces: none appeared within %s (is the NIC driver in the ramdisk?)", wait)
		case <-settle:
			return physicalNICs()
		case <-tick.C:
		}
	}
}

// ConfigureNetwork brings the loopback and every NIC up and runs DHCPv4 on all NICs in
// parallel (one goroutine per NIC, each bounded by cfg), configuring address, netmask and the
// first default route offered. It returns the leases obtained, sorted by NIC name; it fails
// only when no NIC got one. Each NIC then keeps its lease until ctx ends: it renews at T1,
// rebinds at T2, starts again from DISCOVER when the lease expires or the link comes back
// after going down.
func ConfigureNetwork(ctx context.Context, log *slog.Logger, cfg NetworkConfig) ([]Lease, error) {
	if _, err := netboot.IfUp("lo", 2*time.Second); err != nil {
		log.Warn("loopback not up", logKeyNIC, "lo", logKeyError, err)
	}
	nics, err := WaitForNICs(ctx, cfg.NICWait)
	if err != nil {
		return nil, err
	}
	for _, nic := range nics {
		log.Info("network interface", logKeyNIC, nic.Name, "mac", nic.HardwareAddr.String())
	}
	var (
		mu     sync.Mutex
		leases []Lease
		errs   []error
		wg     sync.WaitGroup
		routes = &routeOwner{}
	)
	for _, nic := range nics {
		wg.Add(1)
		go func() {
			k := &leaseKeeper{nic: nic, cfg: cfg, log: log.With(logKeyNIC, nic.Name), routes: routes,
				xids: newXIDSource(nic.HardwareAddr, time.Now())}
			l, err := k.start(ctx)
			mu.Lock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", nic.Name, err))
				log.Warn("no DHCP lease", logKeyNIC, nic.Name, logKeyError, err)
			} else {
				leases = append(leases, l)
			}
			mu.Unlock()
			wg.Done()
			if err == nil {
				k.keep(ctx)
			}
		}()
	}
	wg.Wait()
	sort.Slice(leases, func(i, j int) bool { return leases[i].NIC < leases[j].NIC })
	if len(leases) == 0 {
		return nil, fmt.Errorf("configure network: no NIC got a DHCP lease: %w", errors.Join(errs...))
	}
	return leases, nil
}
