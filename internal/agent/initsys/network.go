package initsys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Lease is the configuration one NIC got: an IPv4 lease from DHCPv4, an IPv6 lease from
// DHCPv6, or an IPv6 address the kernel made from a router advertisement (SLAAC).
type Lease struct {
	NIC    string
	MAC    string
	Addr   net.IPNet
	Router net.IP // DHCPv4: nil when the server gave none, or another NIC holds the default route
	Server net.IP // the DHCPv4 server; nil for IPv6
	Source string // SourceDHCPv4, SourceDHCPv6 or SourceSLAAC
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
	// Need is the family the agent needs (APIFamily of ipa-api-url): FamilyIPv4 runs DHCPv4
	// only, as before IPv6; FamilyIPv6 and FamilyAny also bring IPv6 up on every NIC.
	Need Family
	// IPv6Sysctl is the per-interface IPv6 sysctl directory; empty is /proc/sys/net/ipv6/conf.
	IPv6Sysctl string
}

// DefaultNetworkConfig returns the bounds used in the ramdisk.
func DefaultNetworkConfig() NetworkConfig {
	return NetworkConfig{NICWait: 30 * time.Second, LinkWait: 15 * time.Second, DHCPWait: 60 * time.Second,
		ResolvConf: "/etc/resolv.conf", LinkPoll: time.Second, MinRetry: 60 * time.Second}
}

// physicalNICs are the non-loopback interfaces with an Ethernet MAC, sorted by name, but for
// bonds and bridges: loading the bonding module makes a bond0 that has no link until it is
// given members, and waiting for its link would hold the bring-up for cfg.LinkWait.
func physicalNICs() ([]net.Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	var out []net.Interface
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback != 0 || len(ifc.HardwareAddr) != 6 || aggregate(ifc.Name) {
			continue
		}
		out = append(out, ifc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// aggregate reports whether the interface is a bond or a bridge (sysfs says so).
func aggregate(name string) bool {
	for _, d := range []string{"bonding", "bridge"} {
		if _, err := os.Stat(filepath.Join("/sys/class/net", name, d)); err == nil {
			return true
		}
	}
	return false
}

// WaitForNICs waits until at least one NIC exists, then until every PCI network controller
// has its interface, all within wait. When some controller has none yet (no driver for it, or
// a driver still registering), or the machine shows no PCI network controller at all (NICs on
// another bus), it gives the drivers two more seconds after the first NIC instead, as
// before: the modules are loaded before this runs, so on most machines every NIC is there
// at the first look and nothing is waited for.
func WaitForNICs(ctx context.Context, wait time.Duration) ([]net.Interface, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var settle <-chan time.Time
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		nics, err := physicalNICs()
		if err != nil {
			return nil, err
		}
		if len(nics) > 0 {
			if pci, pending := pciNICsPending("/sys/bus/pci/devices"); pci > 0 && pending == 0 {
				return nics, nil
			}
			if settle == nil {
				settle = time.After(2 * time.Second)
			}
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
// first default route offered. Unless cfg.Need is FamilyIPv4 it also brings IPv6 up on every
// NIC at the same time (router advertisements for SLAAC, the on-link prefix and routes; a
// DHCPv6 client for stateful networks), bounded by cfg.DHCPWait too.
//
// It returns once the family needed is settled: FamilyIPv4, when every NIC's DHCPv4 ended
// (an error when none got a lease); FamilyIPv6, when every NIC's IPv6 ended (an error when
// none got an address; DHCPv4 failing is fine); FamilyAny, when every NIC of one family ended
// with an address in it, or everything ended (an error when nothing came up). The leases
// obtained by then are returned, sorted by NIC name and source. What was not waited for goes on
// in the background. Each NIC then keeps its DHCPv4 lease until ctx ends: it renews at T1,
// rebinds at T2, starts again from DISCOVER when the lease expires or the link comes back
// after going down. A DHCPv6 address is kept as leased, without renewal.
func ConfigureNetwork(ctx context.Context, log *slog.Logger, cfg NetworkConfig) ([]Lease, error) {
	if err := linkUp(ctx, "lo", 2*time.Second); err != nil {
		log.Warn("loopback not up", logKeyNIC, "lo", logKeyError, err)
	}
	nics, err := WaitForNICs(ctx, cfg.NICWait)
	if err != nil {
		return nil, err
	}
	for _, nic := range nics {
		log.Info("network interface", logKeyNIC, nic.Name, "mac", nic.HardwareAddr.String())
	}
	type result struct {
		v6    bool
		nic   string
		lease Lease
		err   error
	}
	results := make(chan result, 2*len(nics)) // never blocks a NIC's goroutine
	routes := &routeOwner{}
	for _, nic := range nics {
		go func() {
			k := &leaseKeeper{nic: nic, cfg: cfg, log: log.With(logKeyNIC, nic.Name), routes: routes,
				xids: newXIDSource(nic.HardwareAddr, time.Now())}
			l, err := k.start(ctx)
			if err != nil {
				log.Warn("no DHCP lease", logKeyNIC, nic.Name, logKeyError, err)
			}
			results <- result{nic: nic.Name, lease: l, err: err}
			if err == nil {
				k.keep(ctx)
			}
		}()
	}
	pending4, pending6 := len(nics), 0
	if cfg.Need != FamilyIPv4 {
		pending6 = len(nics)
		dns := &routeOwner{}
		for _, nic := range nics {
			go func() {
				mac := append(net.HardwareAddr{}, nic.HardwareAddr...)
				mac[0] ^= 0x02 // a different stream of transaction ids than DHCPv4's
				k := &v6Keeper{nic: nic, cfg: cfg, log: log.With(logKeyNIC, nic.Name), dns: dns,
					xids: newXIDSource(mac, time.Now())}
				l, err := k.start(ctx)
				if err != nil {
					log.Warn("no IPv6 address", logKeyNIC, nic.Name, logKeyError, err)
				}
				results <- result{v6: true, nic: nic.Name, lease: l, err: err}
			}()
		}
	}
	var (
		leases     []Lease
		errs       []error
		got4, got6 int
		settled    bool
	)
	for !settled {
		r := <-results
		if r.v6 {
			pending6--
		} else {
			pending4--
		}
		switch {
		case r.err != nil && r.v6:
			errs = append(errs, fmt.Errorf("%s ipv6: %w", r.nic, r.err))
		case r.err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", r.nic, r.err))
		case r.v6:
			got6++
			leases = append(leases, r.lease)
		default:
			got4++
			leases = append(leases, r.lease)
		}
		settled = networkSettled(cfg.Need, pending4, pending6, got4, got6)
	}
	sort.Slice(leases, func(i, j int) bool {
		if leases[i].NIC != leases[j].NIC {
			return leases[i].NIC < leases[j].NIC
		}
		return leases[i].Source < leases[j].Source
	})
	switch {
	case cfg.Need == FamilyIPv4 && got4 == 0:
		return nil, fmt.Errorf("configure network: no NIC got a DHCP lease: %w", errors.Join(errs...))
	case cfg.Need == FamilyIPv6 && got6 == 0:
		return nil, fmt.Errorf("configure network: the API is at an IPv6 address and no NIC got one: %w", errors.Join(errs...))
	case len(leases) == 0:
		return nil, fmt.Errorf("configure network: no NIC got an IPv4 or IPv6 address: %w", errors.Join(errs...))
	}
	return leases, nil
}

// networkSettled says whether ConfigureNetwork has waited enough (see there), from the NICs
// still working per family and the addresses each got.
func networkSettled(need Family, pending4, pending6, got4, got6 int) bool {
	switch need {
	case FamilyIPv4:
		return pending4 == 0
	case FamilyIPv6:
		return pending6 == 0
	}
	return (pending4 == 0 && (got4 > 0 || pending6 == 0)) || (pending6 == 0 && (got6 > 0 || pending4 == 0))
}
