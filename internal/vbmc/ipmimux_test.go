package vbmc

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/driver/ipmi"
	"github.com/ironwork/ironwork/internal/netns"
)

// TestIPMIMuxServesManyBMCsOnOneSocket runs three BMCs on one UDP socket (inside a network
// namespace of the test's own, listening on 0.0.0.0 there) and drives them with the ipmi
// driver: each address reaches its own machine, answers come from the address asked (or the
// client would not accept them), and the mux reports every BMC it routed to.
func TestIPMIMuxServesManyBMCsOnOneSocket(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: it makes a network namespace")
	}
	ns := fmt.Sprintf("iwmux-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v %s", err, out)
	}
	var mux *IPMIMux
	if err := netns.Do(ns, func() (err error) { mux, err = ListenIPMIMux("0.0.0.0:0", 20*time.Millisecond); return err }); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	routed := map[netip.Addr]int{}
	mux.Received = func(a netip.Addr) { mu.Lock(); routed[a]++; mu.Unlock() }
	ctx, cancel := context.WithCancel(context.Background())
	serveDone := make(chan struct{})
	go func() { mux.Serve(ctx); close(serveDone) }()
	t.Cleanup(func() { cancel(); mux.Close(); <-serveDone })

	cfg := Config{Username: "admin", Password: "password", IPMIMux: mux}
	addrs := []string{"127.1.0.1", "127.1.0.2", "127.1.0.3"}
	for i, a := range addrs {
		cfg.Machines = append(cfg.Machines, MachineConfig{Name: fmt.Sprintf("m%d", i), IPMIListen: a,
			Command: []string{"sh", "-c", "exec sleep 300", "vm"}})
	}
	v, err := Start(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	vctx, vcancel := context.WithCancel(context.Background())
	vdone := make(chan struct{})
	go func() { v.Serve(vctx); close(vdone) }()
	t.Cleanup(func() { vcancel(); v.Close(); <-vdone })
	if got, want := v.IPMIAddrs["m1"], fmt.Sprintf("127.1.0.2:%d", mux.Port()); got != want {
		t.Fatalf("IPMIAddrs[m1] = %s, want %s", got, want)
	}

	drv := ipmi.Interface{PollInterval: 20 * time.Millisecond, RetryTimeout: 10 * time.Second}
	task := func(a string) *conductor.Task {
		return &conductor.Task{Node: &ironwork.Node{UUID: "n-" + a, DriverInfo: ironwork.JSONObject{"ipmi_address": a,
			"ipmi_port": fmt.Sprint(mux.Port()), "ipmi_username": "admin", "ipmi_password": "password", "ipmi_cipher_suite": "3"}}}
	}
	// The driver's sockets are made in the namespace (netns.Do), where 127.1.0.0/8 is the
	// mux's. Power on the second machine only, then read all three.
	if err := netns.Do(ns, func() error {
		return drv.SetPowerState(context.Background(), task(addrs[1]), ironwork.PowerOn, 10*time.Second)
	}); err != nil {
		t.Fatal(err)
	}
	for i, a := range addrs {
		var st ironwork.PowerState
		if err := netns.Do(ns, func() (err error) { st, err = drv.PowerState(context.Background(), task(a)); return err }); err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		want := ironwork.PowerOff
		if i == 1 {
			want = ironwork.PowerOn
		}
		if st != want || v.Machine(fmt.Sprintf("m%d", i)).On() != (i == 1) {
			t.Errorf("%s: power state %s (machine on: %v), want %s", a, st, v.Machine(fmt.Sprintf("m%d", i)).On(), want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, a := range addrs {
		if routed[netip.MustParseAddr(a)] == 0 {
			t.Errorf("no datagram routed to %s: %v", a, routed)
		}
	}
}
