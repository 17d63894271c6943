package lab_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/internal/lab"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// TestLabRelayedRack deploys through a DHCP relay: two racks, the provisioning network and a
// second one on its own bridge and subnet behind a router namespace running ISC's dhcrelay,
// one SeaBIOS + iPXE machine on each (IPMI on rack 1, Redfish on rack 2). Both go through
// provide (cleaning) and deploy at once and their instances boot from disk; the server's lease
// store shows each machine's addresses from its own rack's range, the rack-2 machine's
// relayed (dhcrelay forwarded its requests). lab down removes the router namespace too.
//
// Developer-only: it runs with IRONWORK_TEST_RELAY=1 (docs/lab.md).
func TestLabRelayedRack(t *testing.T) {
	if os.Getenv("IRONWORK_TEST_RELAY") != "1" {
		t.Skip("the relayed-rack lab runs with IRONWORK_TEST_RELAY=1")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and taps")
	}
	kernel := lab.FindKernel()
	if err := lab.Check(kernel); err != nil {
		t.Skip(err)
	}
	if _, err := exec.LookPath("dhcrelay"); err != nil {
		t.Skip("needs ISC's dhcrelay: run scripts/deps.sh")
	}
	begin := time.Now()
	bin := t.TempDir()
	goBuild(t, filepath.Join(bin, "ironwork"), "../../cmd/ironwork")
	goBuild(t, filepath.Join(bin, "ironwork-agent"), "../../cmd/ironwork-agent")
	t.Logf("builds: %.1f s", time.Since(begin).Seconds())
	dir := filepath.Join(t.TempDir(), "lab")
	ns := fmt.Sprintf("iwlabr-%d", os.Getpid()%10000)
	var logs bytes.Buffer
	const subnet = "10.226.0"
	opts := lab.Options{Dir: dir, Netns: ns, Subnet: subnet, Ironwork: filepath.Join(bin, "ironwork"),
		Agent: filepath.Join(bin, "ironwork-agent"), KernelDir: kernel, Log: &logs, Racks: 2,
		CallbackTimeout: 3 * time.Minute,
		Nodes: []lab.NodeSpec{
			{Name: "a-rack1", Firmware: "bios", Power: "ipmi", Rack: 1},
			{Name: "b-rack2", Firmware: "bios", Power: "redfish", Rack: 2},
		}}
	start := time.Now()
	st, err := lab.Up(context.Background(), opts)
	router := ns + "-rt"
	t.Cleanup(func() {
		if err := lab.Down(dir, nil); err != nil {
			t.Errorf("lab down: %v", err)
		}
		if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), ns) {
			t.Errorf("network namespaces left after down: %s", out)
		}
		if st != nil {
			for _, p := range st.Procs {
				if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID)); err == nil && !strings.Contains(string(b), ") Z") {
					t.Errorf("%s (pid %d) still runs after down", p.Name, p.PID)
				}
			}
		}
	})
	if err != nil {
		t.Fatalf("lab up: %v\n%s", err, logs.String())
	}
	t.Logf("lab up (ramdisk, image, namespaces, relay, server, BMCs, enrolment): %.1f s", time.Since(start).Seconds())
	defer func() {
		if t.Failed() {
			for _, f := range []string{"serve.log", "dhcrelay.log", "vbmc.log", "a-rack1.serial.log", "b-rack2.serial.log"} {
				b, _ := os.ReadFile(filepath.Join(dir, f))
				t.Logf("--- %s (tail) ---\n%s", f, tailLines(b, 60))
			}
		}
	}()
	if st.RouterNetns != router || len(st.Racks) != 1 || st.Racks[0].Bridge != lab.RackBridge(2) {
		t.Fatalf("state: router %q racks %+v, want %s and one rack on %s", st.RouterNetns, st.Racks, router, lab.RackBridge(2))
	}
	rack2 := st.Racks[0].Subnet
	// The rack-2 machine's tap is on the rack's bridge in the router namespace, not on the
	// provisioning bridge.
	b := st.Nodes[1]
	out, err := exec.Command("ip", "-n", router, "-o", "link", "show", "master", lab.RackBridge(2)).Output()
	if err != nil || !strings.Contains(string(out), " "+b.Tap+":") {
		t.Fatalf("%s's tap %s is not on %s in %s: %v %s", b.Name, b.Tap, lab.RackBridge(2), router, err, out)
	}

	ctx := context.Background()
	results := lab.Cycle(ctx, st, []string{"a-rack1", "b-rack2"}, lab.CycleOptions{Timeout: 10 * time.Minute, SkipUndeploy: true})
	t.Logf("lab up and both deploys: %.1f s (load %s)", time.Since(start).Seconds(), loadavg())
	for _, r := range results {
		for _, p := range r.Phases {
			t.Logf("%s: %-40s %6.1f s", r.Node, p.Name, p.Duration.Seconds())
		}
		if r.Err != nil {
			t.Errorf("%s: %v", r.Node, r.Err)
			continue
		}
		if !strings.Contains(r.BootedLine, "firmware=bios") {
			t.Errorf("%s: the instance reported %q, want firmware=bios", r.Node, r.BootedLine)
		}
	}

	// The lease store: each machine's addresses are from its own rack's range, on its rack's
	// subnet.
	store, err := sqlstore.Open(ctx, filepath.Join(dir, "data", "ironwork.db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("open the server's store: %v", err)
	}
	defer store.Close()
	leases, err := store.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][3]string{ // MAC: subnet, first, last
		st.Nodes[0].MAC: {subnet + ".0/24", subnet + ".100", subnet + ".199"},
		st.Nodes[1].MAC: {rack2 + ".0/24", rack2 + ".100", rack2 + ".199"},
	}
	seen := map[string]int{}
	for _, l := range leases {
		w, ok := want[strings.ToLower(l.MAC)]
		if !ok {
			continue
		}
		seen[strings.ToLower(l.MAC)]++
		t.Logf("lease %s %s subnet %s", l.MAC, l.IP, l.Subnet)
		if l.Subnet != w[0] || !inRange(l.IP, w[1], w[2]) {
			t.Errorf("lease of %s: %s on %q, want %s..%s on %s", l.MAC, l.IP, l.Subnet, w[1], w[2], w[0])
		}
	}
	for mac := range want {
		if seen[mac] == 0 {
			t.Errorf("no lease of %s in the server's store", mac)
		}
	}
	// The rack-2 machine's DHCP went through the relay, and its agent (when the node still
	// records it once active) was on its rack's address.
	relayLog, _ := os.ReadFile(filepath.Join(dir, "dhcrelay.log"))
	if !bytes.Contains(relayLog, []byte("Forwarded BOOTREQUEST")) || !bytes.Contains(relayLog, []byte("Forwarded BOOTREPLY")) {
		t.Errorf("dhcrelay's log shows no request and reply forwarded for %s:\n%s", b.MAC, tailLines(relayLog, 20))
	}
	var node struct {
		DriverInternalInfo map[string]any `json:"driver_internal_info"`
	}
	if err := st.Client().Do(ctx, http.MethodGet, "/v1/nodes/"+b.UUID, nil, &node); err != nil {
		t.Fatal(err)
	}
	if u, _ := node.DriverInternalInfo["agent_url"].(string); u != "" && !strings.Contains(u, "//"+rack2+".") {
		t.Errorf("%s's agent_url %q, want an address on %s.0/24", b.Name, u, rack2)
	}
	t.Logf("total: %.1f s", time.Since(begin).Seconds())
}

func inRange(ip, first, last string) bool {
	a, f, l := net.ParseIP(ip).To4(), net.ParseIP(first).To4(), net.ParseIP(last).To4()
	return a != nil && bytes.Compare(a, f) >= 0 && bytes.Compare(a, l) <= 0
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}
