package lab_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ironwork/ironwork/internal/lab"
	"github.com/ironwork/ironwork/internal/lab/testimage"
)

// TestLabConsoleAndInspection brings up a lab of two IPMI machines behind Ironwork's vbmc and
// drives them at once. Subtest console: the serial console of console-ipmi is enabled, the
// test connects to the console URL and reads the deploy ramdisk's kernel booting over IPMI
// Serial-over-LAN while cleaning boots it, then disables the console and sees the
// connection closed, then deploys it with the ramdisk deploy interface (labRamdiskDeploy).
// Subtest inspection: a-inspect, of the shape, is inspected in band through the
// whole server (checkLabInspection).
func TestLabConsoleAndInspection(tt *testing.T) {
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
	ns := fmt.Sprintf("iwlabc-%d", os.Getpid()%10000)
	var logs bytes.Buffer
	shape := lab.Shape{CPUs: 2, MemoryMB: 1536, Disks: []int64{8 << 30, 4 << 30}, NICs: 2}
	opts := lab.Options{Dir: dir, Netns: ns, Subnet: "10.215.0", Ironwork: ironworkBin,
		Agent: agentBin, KernelDir: kernel, Cache: labCache(), CallbackTimeout: 5 * time.Minute, Log: &logs,
		Nodes: []lab.NodeSpec{
			{Name: "console-ipmi", Firmware: "bios", Power: "ipmi", Console: true},
			// Enrolled as `ironwork lab up --inspect` enrols: no properties, inspect_interface agent.
			{Name: "a-inspect", Firmware: "bios", Power: "ipmi", Shape: shape, Inspect: true},
		}}
	start := time.Now()
	runningLabs.track(t, dir)
	st, err := lab.Up(context.Background(), opts)
	t.Cleanup(func() {
		if err := lab.Down(dir, nil); err != nil {
			t.Errorf("lab down: %v", err)
		}
		if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), ns) {
			t.Errorf("network namespace %s is left after down: %s", ns, out)
		}
	})
	if err != nil {
		t.Logf("lab up's log:\n%s", logs.String())
		t.Fatalf("lab up: %v", err)
	}
	t.Logf("lab up: %.1f s", time.Since(start).Seconds())
	defer t.dumpIfFailed(dir, 40, "serve.log", "vbmc.log", "console-ipmi.serial.log", "a-inspect.serial.log")
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Go(func() { t.Run("console", func(t *labT) { checkConsole(ctx, t, st, st.Nodes[0]) }) })
	wg.Go(func() { t.Run("inspection", func(t *labT) { checkLabInspection(ctx, t, st, st.Nodes[1]) }) })
	wg.Wait()
	t.Logf("whole test: %.1f s", time.Since(start).Seconds())
}

// checkConsole enables the serial console of n, an IPMI node of the vbmc's with
// NodeSpec.Console, connects to the console URL, and reads the deploy ramdisk's kernel
// booting over IPMI Serial-over-LAN while cleaning boots it; then disables the console and
// sees the connection closed; then deploys and undeploys it with the ramdisk deploy interface.
func checkConsole(ctx context.Context, t testing.TB, st *lab.State, n lab.Node) {
	c := st.Client()
	dir := st.Dir

	if err := c.Do(ctx, http.MethodPut, "/v1/nodes/"+n.UUID+"/states/console", map[string]any{"enabled": true}, nil); err != nil {
		t.Fatal(err)
	}
	var url string
	deadline := time.Now().Add(30 * time.Second)
	for url == "" {
		var cs struct {
			Enabled bool `json:"console_enabled"`
			Info    *struct {
				URL string `json:"url"`
			} `json:"console_info"`
		}
		if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+n.UUID+"/states/console", nil, &cs); err != nil {
			t.Fatal(err)
		}
		if cs.Enabled && cs.Info != nil {
			url = cs.Info.URL
		} else if time.Now().After(deadline) {
			t.Fatalf("console not enabled within 30 s: %+v", cs)
		} else {
			time.Sleep(200 * time.Millisecond)
		}
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Logf("console enabled at %s", url)

	// Verify, then provide: automated cleaning powers the machine on and network-boots the
	// deploy ramdisk, whose kernel prints to ttyS0.
	if err := lab.ProvisionVerb(ctx, c, n.UUID, "manage", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.WaitState(ctx, c, n.UUID, "manageable", 2*time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	if err := lab.ProvisionVerb(ctx, c, n.UUID, "provide", nil); err != nil {
		t.Fatal(err)
	}
	bootStart := time.Now()
	r := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(4 * time.Minute))
	var seen strings.Builder
	for _, want := range []string{"Linux version", "ironwork-agent"} {
		for !strings.Contains(seen.String(), want) {
			line, err := r.ReadString('\n')
			seen.WriteString(line)
			if err != nil {
				t.Fatalf("console: no %q within 4 min of provide: %v; read %d bytes, last: %q", want, err, seen.Len(), tailLines([]byte(seen.String()), 10))
			}
		}
		t.Logf("console: %q after %.1f s", want, time.Since(bootStart).Seconds())
	}
	if err := c.Do(ctx, http.MethodPut, "/v1/nodes/"+n.UUID+"/states/console", map[string]any{"enabled": false}, nil); err != nil {
		t.Fatal(err)
	}
	closeStart := time.Now()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatalf("the console connection was not closed within 30 s of disable: %v", err)
	}
	t.Logf("console connection closed %.2f s after disable", time.Since(closeStart).Seconds())
	b, _ := os.ReadFile(filepath.Join(dir, "consoles", n.UUID+".log"))
	if !bytes.Contains(b, []byte("Linux version")) {
		t.Errorf("the console log file lacks the kernel's boot messages (%d bytes)", len(b))
	}
	labRamdiskDeploy(ctx, t, st, n)
}

// labRamdiskDeploy deploys the node with the ramdisk deploy interface: the test image's own
// kernel and initramfs, booted over iPXE from the HTTP boot server with nothing written to
// disk, print the image's booted line; undeploy (automated_clean false) brings the node back
// to available, powered off. (It rides on TestLabConsoleAndInspection's console machine, so
// it costs no lab of its own.)
func labRamdiskDeploy(ctx context.Context, t testing.TB, st *lab.State, n lab.Node) {
	c := st.Client()
	if _, err := lab.WaitState(ctx, c, n.UUID, "available", 5*time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	disk := fileSum(t, n.Disk)
	if err := c.Do(ctx, http.MethodPatch, "/v1/nodes/"+n.UUID, []map[string]any{
		{"op": "replace", "path": "/deploy_interface", "value": "ramdisk"},
		// No cleaning at undeploy: the console part already booted the agent for cleaning.
		{"op": "replace", "path": "/automated_clean", "value": false},
		{"op": "add", "path": "/instance_info", "value": map[string]any{"kernel": st.ImageKernel, "ramdisk": st.ImageRamdisk,
			"ramdisk_kernel_arguments": testimage.KernelCmdline}}}, nil); err != nil {
		t.Fatal(err)
	}
	var serialFrom int64
	if fi, err := os.Stat(n.Serial); err == nil {
		serialFrom = fi.Size()
	}
	begin := time.Now()
	if err := lab.ProvisionVerb(ctx, c, n.UUID, "active", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.WaitState(ctx, c, n.UUID, "active", time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	active := time.Since(begin)
	line, err := lab.WaitSerial(ctx, n.Serial, serialFrom, testimage.Marker, 4*time.Minute)
	if err != nil {
		t.Fatalf("ramdisk deploy: the instance did not boot: %v", err)
	}
	if fw, ok := testimage.ParseBootedLine(line); !ok || fw != n.Firmware {
		t.Errorf("ramdisk instance reported %q, want firmware=%s", line, n.Firmware)
	}
	t.Logf("ramdisk deploy: active after %.1f s, instance booted from the network after %.1f s: %s",
		active.Seconds(), time.Since(begin).Seconds(), line)
	if after := fileSum(t, n.Disk); after != disk {
		t.Error("the ramdisk deploy wrote to the disk")
	}
	begin = time.Now()
	if err := lab.ProvisionVerb(ctx, c, n.UUID, "deleted", nil); err != nil {
		t.Fatal(err)
	}
	node, err := lab.WaitState(ctx, c, n.UUID, "available", 5*time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	if node["power_state"] != "power off" {
		t.Errorf("undeployed ramdisk node is %v", node["power_state"])
	}
	t.Logf("ramdisk undeploy (no cleaning): %.1f s", time.Since(begin).Seconds())
}

// fileSum is the sha256 of a file, read in one pass.
func fileSum(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
