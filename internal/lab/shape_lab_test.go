package lab_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/driver/redfish"
	"github.com/ironwork/ironwork/internal/lab"
)

// TestLabShapesAndDiscovery brings a lab up with a machine of the shape (2 vCPUs,
// 1536 MiB, disks of 8 and 4 GiB, two NICs) and a machine of that shape to discover. The
// shaped machine is enrolled with its first MAC as PXE port, its disks and taps exist with
// their sizes, and the redfish inspect interface reads exactly that hardware from the lab's
// vbmc; the machine to discover is not enrolled and its BMC powered it on to boot from the
// network. Then, at once, the server discovers it (checkDiscovery, subtest discovery: one
// node enrolled with that hardware, the machine off) and, in subtest shaped, the
// shaped machine's two disks become a software RAID-1 mirror that it is deployed onto and
// boots from (checkSoftwareRAIDDeploy), between a manual clean of out-of-band steps (redfish
// raid, bios and firmware with disable_ramdisk: checkOutOfBandClean) and a servicing of the
// active node with the bios and firmware steps, after which the instance boots again
// (checkOutOfBandService).
func TestLabShapesAndDiscovery(tt *testing.T) {
	t := newLabT(tt)
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and taps")
	}
	kernel := lab.FindKernel()
	if err := lab.Check(kernel); err != nil {
		t.Skip(err)
	}
	t.Parallel() // two labs at a time (scripts/test.sh: -parallel 2)
	ironworkBin, agentBin := labBinaries(t)
	dir := filepath.Join(t.TempDir(), "lab")
	ns := fmt.Sprintf("iwlabs-%d", os.Getpid()%10000)
	var logs bytes.Buffer
	shape := lab.Shape{CPUs: 2, MemoryMB: 1536, Disks: []int64{8 << 30, 4 << 30}, NICs: 2}
	opts := lab.Options{Dir: dir, Netns: ns, Subnet: "10.215.0", Ironwork: ironworkBin,
		Agent: agentBin, KernelDir: kernel, Cache: labCache(), Log: &logs,
		Nodes: []lab.NodeSpec{
			{Name: "a-shaped", Firmware: "bios", Power: "redfish", Shape: shape},
			{Name: "b-discover", Firmware: "bios", Power: "redfish", Shape: shape, Discover: true},
		}}
	start := time.Now()
	runningLabs.track(t, dir)
	st, err := lab.Up(context.Background(), opts)
	t.Cleanup(func() {
		if err := lab.Down(dir, nil); err != nil {
			t.Errorf("lab down: %v", err)
		}
		if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), ns) {
			t.Errorf("network namespace %s is left after down", ns)
		}
	})
	if err != nil {
		t.Logf("lab up's log:\n%s", logs.String())
		t.Fatalf("lab up: %v", err)
	}
	t.Logf("lab up: %.1f s", time.Since(start).Seconds())
	ctx := context.Background()
	a, b := st.Nodes[0], st.Nodes[1]

	if a.UUID == "" || b.UUID != "" || !b.Discover {
		t.Errorf("enrolment: a %q, b %q (discover %v)", a.UUID, b.UUID, b.Discover)
	}
	if len(a.MACs) != 2 || a.MACs[0] != a.MAC || len(a.Taps) != 2 || len(a.Disks) != 2 {
		t.Fatalf("shaped machine in the state: %+v", a)
	}
	for i, d := range a.Disks {
		if fi, err := os.Stat(d); err != nil || fi.Size() != shape.Disks[i] {
			t.Errorf("disk %s: %v, size want %d", d, err, shape.Disks[i])
		}
	}
	for _, tap := range a.Taps {
		if out, err := exec.Command("ip", "-n", ns, "link", "show", tap).CombinedOutput(); err != nil || !strings.Contains(string(out), "master br0") {
			t.Errorf("tap %s: %v %s", tap, err, out)
		}
	}
	var nodes struct{ Nodes []map[string]any }
	var ports struct{ Ports []map[string]any }
	c := st.Client()
	if err := c.Do(ctx, http.MethodGet, "/v1/nodes", nil, &nodes); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, http.MethodGet, "/v1/ports?node="+a.UUID, nil, &ports); err != nil {
		t.Fatal(err)
	}
	if len(nodes.Nodes) != 1 || len(ports.Ports) != 1 || ports.Ports[0]["address"] != a.MACs[0] {
		t.Errorf("nodes %v, ports of a %v", nodes.Nodes, ports.Ports)
	}

	tk := &conductor.Task{Node: &ironwork.Node{UUID: a.UUID, DriverInfo: ironwork.JSONObject{"redfish_address": a.BMCAddress,
		"redfish_system_id": "/redfish/v1/Systems/" + a.Name, "redfish_username": lab.BMCUser, "redfish_password": lab.BMCPassword}}}
	res, err := redfish.Interface{}.InspectHardware(ctx, tk)
	if err != nil {
		t.Fatal(err)
	}
	want := &conductor.InspectResult{CPUs: 2, CPUArch: "x86_64", MemoryMB: 1536, LocalGB: 3, BootMode: "bios", MACs: a.MACs}
	if d := cmp.Diff(want, res); d != "" {
		t.Errorf("redfish inspection of the shaped machine (-want +got):\n%s", d)
	}
	if n := powerOns(t, st, b.Name); n != 1 {
		b, _ := os.ReadFile(filepath.Join(dir, "vbmc.log"))
		t.Errorf("the machine to discover was powered on %d times, want 1\n%s", n, tailLines(b, 20))
	}
	if n := powerOns(t, st, a.Name); n != 0 {
		t.Errorf("the enrolled machine was powered on %d times by up, want 0", n)
	}
	if t.Failed() {
		return
	}
	defer t.dumpIfFailed(dir, 60, "serve.log", "vbmc.log", a.Name+".serial.log", b.Name+".serial.log")
	// At once: the discovery of b (which up powered on), and a's out-of-band steps and
	// software RAID deploy.
	fwBase, sums := firmwareServer(t)
	var wg sync.WaitGroup
	wg.Go(func() {
		t.Run("discovery", func(t *labT) { checkDiscovery(ctx, t, st, b, a.UUID) })
	})
	wg.Go(func() {
		t.Run("shaped", func(t *labT) {
			checkOutOfBandClean(ctx, t, st, a.Name, fwBase, sums)
			if t.Failed() {
				return
			}
			checkSoftwareRAIDDeploy(ctx, t, st, a.Name)
			if t.Failed() {
				return
			}
			checkOutOfBandService(ctx, t, st, a.Name, fwBase, sums)
		})
	})
	wg.Wait()
	t.Logf("whole test: %.1f s", time.Since(start).Seconds())
}
