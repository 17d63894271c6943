package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/ironwork/ironwork/internal/vbmc"
)

// seen records when each BMC was last read, as the BMC sees it.
type seen struct {
	last  []atomic.Int64 // unix ns; 0: never
	start time.Time
}

// touch records a read of BMC i.
func (s *seen) touch(i int) { s.last[i].Store(time.Now().UnixNano()) }

// worst returns how long ago the least recently read BMC was read (since start for one never
// read) and how many were read at least once.
func (s *seen) worst(now time.Time) (time.Duration, int) {
	var oldest time.Time
	read := 0
	for i := range s.last {
		t := s.start
		if ns := s.last[i].Load(); ns != 0 {
			t = time.Unix(0, ns)
			read++
		}
		if oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	return now.Sub(oldest), read
}

func runBMCs(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fleet bmcs", flag.ContinueOnError)
	nIPMI := fs.Int("ipmi", 1000, "IPMI BMCs")
	nRedfish := fs.Int("redfish", 1000, "Redfish systems")
	latency := fs.Duration("latency", 50*time.Millisecond, "delay of every IPMI datagram answered and every Redfish answer")
	ipmiListen := fs.String("ipmi-listen", "0.0.0.0:623", "UDP address of the one IPMI socket (0.0.0.0: inside a network namespace of your own)")
	ipmiBase := fs.String("ipmi-base", "127.1.0.1", "address of the first IPMI BMC; the others follow it")
	redfishListen := fs.String("redfish-listen", "127.0.0.1:8000", "Redfish service address")
	nodesFile := fs.String("nodes", "fleet-nodes.jsonl", "write the nodes to enrol here, one JSON object a line")
	report := fs.Duration("report", 10*time.Second, "how often to print the worst lag")
	prefix := fs.String("prefix", "", "node name prefix")
	if err := fs.Parse(args); err != nil {
		return err
	}
	base, err := netip.ParseAddr(*ipmiBase)
	if err != nil || !base.Is4() {
		return fmt.Errorf("-ipmi-base %q: an IPv4 address", *ipmiBase)
	}
	cfg := vbmc.Config{Username: "admin", Password: "password", RedfishListen: *redfishListen, RedfishLatency: *latency}
	if *nIPMI > 0 {
		mux, err := vbmc.ListenIPMIMux(*ipmiListen, *latency)
		if err != nil {
			return err
		}
		defer mux.Close()
		cfg.IPMIMux = mux
	}
	total := *nIPMI + *nRedfish
	s := &seen{last: make([]atomic.Int64, total), start: time.Now()}
	addrs := make([]netip.Addr, *nIPMI)
	a := base
	for i := range *nIPMI {
		addrs[i] = a
		cfg.Machines = append(cfg.Machines, vbmc.MachineConfig{Name: fmt.Sprintf("%sipmi-%05d", *prefix, i),
			IPMIListen: a.String(), Command: []string{"true"}})
		if a = a.Next(); !a.IsValid() || !a.IsLoopback() && base.IsLoopback() {
			return fmt.Errorf("-ipmi %d: too many for the addresses after %s", *nIPMI, base)
		}
	}
	for i := range *nRedfish {
		cfg.Machines = append(cfg.Machines, vbmc.MachineConfig{Name: fmt.Sprintf("%sredfish-%05d", *prefix, i), Command: []string{"true"}})
	}
	if total == 0 {
		return fmt.Errorf("no BMC to serve: -ipmi and -redfish are 0")
	}
	if cfg.IPMIMux != nil {
		cfg.IPMIMux.Received = func(ip netip.Addr) {
			if i := ipOffset(base, ip); i >= 0 && i < int64(*nIPMI) {
				s.touch(int(i))
			}
		}
		go cfg.IPMIMux.Serve(ctx)
	}
	index := map[string]int{}
	for i, m := range cfg.Machines {
		index[m.Name] = i
	}
	cfg.SystemRead = func(name string) {
		if i, ok := index[name]; ok {
			s.touch(i)
		}
	}
	began := time.Now()
	v, err := vbmc.Start(cfg, nil)
	if err != nil {
		return err
	}
	defer v.Close()
	if err := writeNodes(*nodesFile, cfg, v, addrs); err != nil {
		return err
	}
	fmt.Printf("fleet bmcs: %d IPMI (one socket, %s + i) and %d Redfish (%s) BMCs, latency %s, up in %.1f s; nodes in %s\n",
		*nIPMI, base, *nRedfish, v.RedfishURL, *latency, time.Since(began).Seconds(), *nodesFile)
	s.start = time.Now()
	go v.Serve(ctx)
	tick := time.NewTicker(*report)
	defer tick.Stop()
	var maxLag time.Duration
	for {
		select {
		case <-ctx.Done():
			fmt.Printf("RESULT bmcs=%d max_lag_s=%.1f\n", total, maxLag.Seconds())
			return nil
		case now := <-tick.C:
			lag, read := s.worst(now)
			if read == total { // the lag counts once every BMC has been read once
				maxLag = max(maxLag, lag)
			}
			fmt.Printf("LAG t=%.0f read=%d/%d worst_s=%.1f max_s=%.1f\n", now.Sub(began).Seconds(), read, total, lag.Seconds(), maxLag.Seconds())
		}
	}
}

// ipOffset is how far ip is after base (both IPv4).
func ipOffset(base, ip netip.Addr) int64 {
	b, x := base.As4(), ip.As4()
	u := func(a [4]byte) int64 { return int64(a[0])<<24 | int64(a[1])<<16 | int64(a[2])<<8 | int64(a[3]) }
	return u(x) - u(b)
}

// writeNodes writes the API's node bodies of every machine.
func writeNodes(path string, cfg vbmc.Config, v *vbmc.VBMC, addrs []netip.Addr) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create the nodes file: %w", err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	port := 0
	if cfg.IPMIMux != nil {
		port = cfg.IPMIMux.Port()
	}
	for i, m := range cfg.Machines {
		n := map[string]any{"name": m.Name, "resource_class": "fleet"}
		if i < len(addrs) {
			n["driver"] = "ipmi"
			n["driver_info"] = map[string]any{"ipmi_address": addrs[i].String(), "ipmi_port": port,
				"ipmi_username": "admin", "ipmi_password": "password", "ipmi_cipher_suite": "3"}
		} else {
			n["driver"] = "redfish"
			n["driver_info"] = map[string]any{"redfish_address": v.RedfishURL, "redfish_system_id": "/redfish/v1/Systems/" + m.Name,
				"redfish_username": "admin", "redfish_password": "password"}
		}
		if err := enc.Encode(n); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write the nodes file: %w", err)
	}
	return f.Close()
}
