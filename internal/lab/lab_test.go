package lab_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ironwork/ironwork/internal/image/ocitest"
	"github.com/ironwork/ironwork/internal/instance"
	"github.com/ironwork/ironwork/internal/lab"
	"github.com/ironwork/ironwork/internal/lab/testimage"
)

func goBuild(t testing.TB, out, pkg string) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is needed to build " + pkg)
	}
	cmd := exec.Command(goBin, "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v: %s", pkg, err, b)
	}
}

// powerOns counts the BMC's power-on calls for a machine in the vbmc log.
func powerOns(t testing.TB, st *lab.State, name string) int {
	b, _ := os.ReadFile(filepath.Join(st.Dir, "vbmc.log"))
	return bytes.Count(b, []byte(`msg="powered on" vm=`+name+" "))
}

// TestLabEndToEnd runs the lab's whole flow on QEMU (TCG): node A (SeaBIOS + iPXE, IPMI, on a
// second rack whose DHCP goes through ISC's dhcrelay) and node B (OVMF, Redfish, on the
// provisioning network), both through Ironwork's vbmc, are cleaned, deployed with the test
// image, seen booting it from disk, undeployed and cleaned again, at once. Beside them: a
// node with a wrong BMC password fails verification, a machine that boots nothing fails
// cleaning at the callback timeout, and a wrong image checksum fails a deploy. Then B is
// deployed again by ironwork deploy from an oci:// image in a registry on loopback with token
// auth, through the conductor's cache (image_download_source local).
func TestLabEndToEnd(tt *testing.T) {
	t := newLabT(tt)
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and taps")
	}
	kernel := lab.FindKernel()
	if err := lab.Check(kernel); err != nil {
		t.Skip(err)
	}
	if _, err := exec.LookPath("dhcrelay"); err != nil {
		t.Skip("needs ISC's dhcrelay for the second rack: run scripts/deps.sh")
	}
	t.Parallel() // two labs at a time (scripts/test.sh: -parallel 2)
	ironworkBin, agentBin := labBinaries(t)
	dir := filepath.Join(t.TempDir(), "lab")
	ns := fmt.Sprintf("iwlabt-%d", os.Getpid()%10000)
	var logs bytes.Buffer
	// An OCI registry with token auth on loopback, for ironwork deploy's oci:// image: the
	// conductor (outside the namespace) resolves it and caches the blob (download source
	// local), and the agent downloads it from the conductor.
	regLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := ocitest.New()
	reg.User, reg.Password = "lab-robot", "lab-pull-secret"
	reg.Start(regLn)
	defer reg.Close()
	// A sits on a second rack behind a router namespace running ISC's dhcrelay (its own
	// bridge and subnet, a [[dhcp_subnet]] of its own); the others on the provisioning network.
	opts := lab.Options{Dir: dir, Netns: ns, Subnet: "10.214.0", Ironwork: ironworkBin,
		ServerConfig: fmt.Sprintf("oci_plain_http_registries = [%q]", reg.Host()),
		Agent:        agentBin, KernelDir: kernel, Cache: labCache(),
		// The lab's default: B's OVMF machine, on a loaded machine with another lab beside it,
		// took more than 3 minutes from power on to its agent's lookup (90 s and 3 minutes both
		// failed it). D waits for it beside A and B's cycle and the deploys after it.
		CallbackTimeout: 5 * time.Minute, Log: &logs,
		Racks: 2,
		Nodes: []lab.NodeSpec{
			{Name: "a-bios-ipmi", Firmware: "bios", Power: "ipmi", Rack: 2},
			{Name: "b-uefi-redfish", Firmware: "uefi", Power: "redfish", Rack: 1},
			{Name: "c-bad-password", Firmware: "bios", Power: "ipmi", BMCPassword: "not-the-password", Command: []string{"sh", "-c", "exec sleep 600", "vm"}, Rack: 1},
			{Name: "d-no-callback", Firmware: "bios", Power: "redfish", Command: []string{"sh", "-c", "exec sleep 600", "vm"}, Rack: 1},
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
		if st != nil {
			for _, p := range st.Procs {
				if _, err := os.Stat(fmt.Sprintf("/proc/%d", p.PID)); err == nil {
					if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID)); !strings.Contains(string(b), ") Z") {
						t.Errorf("%s (pid %d) still runs after down", p.Name, p.PID)
					}
				}
			}
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("lab directory %s is left after down", dir)
		}
	})
	if err != nil {
		t.Logf("lab up's log:\n%s", logs.String())
		t.Fatalf("lab up: %v", err)
	}
	t.Logf("lab up (ramdisk, image, namespace, server, BMCs, enrolment): %.1f s", time.Since(start).Seconds())
	defer t.dumpIfFailed(dir, 40, "serve.log", "vbmc.log", "a-bios-ipmi.serial.log", "b-uefi-redfish.serial.log")
	ctx := context.Background()
	c := st.Client()
	nodes := map[string]lab.Node{}
	for _, n := range st.Nodes {
		nodes[n.Name] = n
	}

	var wg sync.WaitGroup
	// A wrong BMC password: verification fails back to enroll, naming the authentication.
	wg.Add(1)
	go func() {
		defer wg.Done()
		n := nodes["c-bad-password"]
		var v map[string]any
		if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+n.UUID+"/validate", nil, &v); err != nil {
			t.Errorf("validate: %v", err)
			return
		}
		if err := lab.ProvisionVerb(ctx, c, n.UUID, "manage", nil); err != nil {
			t.Errorf("manage: %v", err)
			return
		}
		node, err := lab.WaitState(ctx, c, n.UUID, "enroll", 60*time.Second, nil)
		if err != nil {
			t.Errorf("a wrong password: %v", err)
			return
		}
		le := fmt.Sprint(node["last_error"])
		if !strings.Contains(strings.ToLower(le), "auth") && !strings.Contains(strings.ToLower(le), "password") {
			t.Errorf("last_error does not name the authentication failure: %s", le)
		}
		if strings.Contains(le, "not-the-password") {
			t.Errorf("last_error shows the password: %s", le)
		}
		t.Logf("wrong BMC password: validate power=%v; manage -> enroll: %s", v["power"], le)
	}()
	// A machine that boots nothing: cleaning fails at the callback timeout.
	wg.Add(1)
	go func() {
		defer wg.Done()
		n := nodes["d-no-callback"]
		begin := time.Now()
		if err := lab.ProvisionVerb(ctx, c, n.UUID, "manage", nil); err != nil {
			t.Errorf("manage: %v", err)
			return
		}
		if _, err := lab.WaitState(ctx, c, n.UUID, "manageable", 60*time.Second, nil); err != nil {
			t.Errorf("manage: %v", err)
			return
		}
		if err := lab.ProvisionVerb(ctx, c, n.UUID, "provide", nil); err != nil {
			t.Errorf("provide: %v", err)
			return
		}
		node, err := lab.WaitState(ctx, c, n.UUID, "clean failed", 8*time.Minute, nil)
		if err != nil {
			t.Errorf("no callback: %v", err)
			return
		}
		le := fmt.Sprint(node["last_error"])
		if !strings.Contains(strings.ToLower(le), "timeout") && !strings.Contains(strings.ToLower(le), "timed out") {
			t.Errorf("last_error does not give the callback timeout: %s", le)
		}
		t.Logf("no callback: clean failed after %.1f s: %s", time.Since(begin).Seconds(), le)
	}()

	// The main flow, A and B at once.
	var mu sync.Mutex
	onsAt := map[string]int{}
	res := lab.Cycle(ctx, st, []string{"a-bios-ipmi", "b-uefi-redfish"}, lab.CycleOptions{Timeout: 5 * time.Minute,
		OnProgress: func(p lab.Progress) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case strings.HasPrefix(p.Note, "provide (cleaning) done"):
				onsAt[p.Node+"/provided"] = powerOns(t, st, p.Node)
			case strings.HasPrefix(p.Note, "deploy done"):
				onsAt[p.Node+"/active"] = powerOns(t, st, p.Node)
			}
		}})
	for _, r := range res {
		for _, p := range r.Phases {
			t.Logf("%s: %-30s %6.1f s", r.Node, p.Name, p.Duration.Seconds())
		}
		if r.Err != nil {
			t.Errorf("%s: %v", r.Node, r.Err)
			continue
		}
		fw := nodes[r.Node].Firmware
		if !strings.Contains(r.BootedLine, "firmware="+fw) {
			t.Errorf("%s: the instance reported %q, want firmware=%s", r.Node, r.BootedLine, fw)
		}
		if d := onsAt[r.Node+"/active"] - onsAt[r.Node+"/provided"]; d != 2 {
			t.Errorf("%s: %d power-ons from available to active, want 2 (ramdisk, instance)", r.Node, d)
		}
		f, err := os.Open(nodes[r.Node].Disk)
		if err != nil {
			t.Fatal(err)
		}
		head := make([]byte, 1<<20)
		_, err = f.ReadAt(head, 0)
		f.Close()
		if err != nil || !bytes.Equal(head, make([]byte, 1<<20)) {
			t.Errorf("%s: cleaning after undeploy left the disk's first MiB (partition table) as it was (%v)", r.Node, err)
		}
	}

	// A deployed from rack 2, through the relay.
	if !t.Failed() {
		checkRelayedRack(ctx, t, st, dir, "10.214.0", nodes["a-bios-ipmi"], nodes["b-uefi-redfish"])
	}

	// ironwork deploy on B: allocation, VIF, config drive built by the conductor; the instance
	// reads its hostname and key back from the config-2 partition. The image comes from the
	// OCI registry (the lab's test image pushed as a raw disktype artifact).
	if !t.Failed() {
		img, err := os.ReadFile(filepath.Join(dir, "data", "boot", "lab", "image.raw"))
		if err != nil {
			t.Fatal(err)
		}
		reg.Push("lab/testimage", "whole-disk", img, ocitest.Artifact{DiskType: "raw", Arch: "x86_64"})
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := nodes["b-uefi-redfish"]
			begin := time.Now()
			var serialFrom int64
			if fi, err := os.Stat(n.Serial); err == nil {
				serialFrom = fi.Size()
			}
			key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILabKeyForTheEndToEndTest lab@ironwork"
			inst, err := instance.Deploy(ctx, c, instance.Request{ResourceClass: lab.ResourceClass,
				Capabilities: map[string]string{"boot_mode": "uefi"}, Hostname: "lab-web-1", Image: "oci://" + reg.Host() + "/lab/testimage:whole-disk",
				PullSecret: "lab-robot:lab-pull-secret", DownloadSource: "local", SSHKeys: []string{key}, UserData: []byte("#cloud-config\n")}, nil)
			if err != nil {
				t.Errorf("ironwork deploy: %v", err)
				return
			}
			if inst.Node != n.UUID || len(inst.NICs) != 1 || inst.NICs[0].MAC != n.MAC {
				t.Errorf("ironwork deploy picked %+v, want node %s with its port %s", inst, n.UUID, n.MAC)
			}
			line, err := lab.WaitSerial(ctx, n.Serial, serialFrom, testimage.ConfigDriveMarker, 3*time.Minute)
			if err != nil {
				t.Errorf("ironwork deploy: %v", err)
				return
			}
			rep, err := testimage.ParseConfigDriveLine(line)
			if err != nil || !rep.Found || rep.Hostname != "lab-web-1" || rep.UUID != n.UUID ||
				strings.Join(rep.Keys, ",") != "lab@ironwork" || rep.UserDataBytes != int64(len("#cloud-config\n")) || !rep.NetworkData {
				t.Errorf("config drive seen by the instance: %q (%+v, %v)", line, rep, err)
			}
			t.Logf("ironwork deploy from oci:// (%d token requests, %d blob GETs): active and config drive read by the instance after %.1f s: %s",
				reg.TokenRequests.Load(), reg.BlobGets.Load(), time.Since(begin).Seconds(), line)
			if reg.BlobGets.Load() != 1 {
				t.Errorf("the registry served the blob %d times, want once (into the conductor's cache)", reg.BlobGets.Load())
			}
			if err := instance.Undeploy(ctx, c, n.UUID, time.Second, nil); err != nil {
				t.Errorf("ironwork undeploy: %v", err)
			}
			t.Logf("ironwork deploy + undeploy: %.1f s", time.Since(begin).Seconds())
		}()
	}

	// A wrong checksum on A: deploy failed with the reason.
	if !t.Failed() {
		n := nodes["a-bios-ipmi"]
		bad := strings.Repeat("0", 64)
		if err := c.Do(ctx, http.MethodPatch, "/v1/nodes/"+n.UUID, []map[string]any{{"op": "add", "path": "/instance_info",
			"value": map[string]any{"image_source": st.Image, "image_checksum": "sha256:" + bad}}}, nil); err != nil {
			t.Fatal(err)
		}
		begin := time.Now()
		if err := lab.ProvisionVerb(ctx, c, n.UUID, "active", nil); err != nil {
			t.Fatal(err)
		}
		node, err := lab.WaitState(ctx, c, n.UUID, "deploy failed", 4*time.Minute, nil)
		if err != nil {
			t.Fatalf("wrong checksum: %v", err)
		}
		if le := fmt.Sprint(node["last_error"]); !strings.Contains(le, "checksum") || !strings.Contains(le, bad) {
			t.Errorf("last_error does not give the checksum mismatch: %s", le)
		} else {
			t.Logf("wrong checksum: deploy failed after %.1f s: %s", time.Since(begin).Seconds(), le)
		}
	}
	wg.Wait()

	// The server's metrics count what this test did (when all of it ran): A and B manage,
	// provide, deploy and undeploy; B is deployed and undeployed again by ironwork deploy; A's
	// deploy with a wrong checksum fails; C's verification fails back to enroll; D's cleaning
	// fails. The counters are the conductor's, the nodes gauge is read from the database.
	if !t.Failed() {
		tr, phase, nodes := "ironwork_provision_transitions_total", "ironwork_provision_duration_seconds", "ironwork_nodes"
		waitMetrics(ctx, t, st, []metricWant{
			{tr, map[string]string{"from": "verifying", "to": "manageable"}, 3},
			{tr, map[string]string{"from": "verifying", "to": "enroll"}, 1},
			{tr, map[string]string{"to": "active"}, 3},
			{tr, map[string]string{"to": "deploy failed"}, 1},
			{tr, map[string]string{"to": "clean failed"}, 1},
			{tr, map[string]string{"to": "available"}, 5},
			{tr, map[string]string{"to": "deleting"}, 3},
			{phase, map[string]string{"operation": "deploy", "result": "success"}, 3},
			{phase, map[string]string{"operation": "deploy", "result": "failure"}, 1},
			{phase, map[string]string{"operation": "clean", "result": "success"}, 5},
			{phase, map[string]string{"operation": "clean", "result": "failure"}, 1},
			{nodes, map[string]string{"provision_state": "available"}, 1},
			{nodes, map[string]string{"provision_state": "deploy failed"}, 1},
			{nodes, map[string]string{"provision_state": "enroll"}, 1},
			{nodes, map[string]string{"provision_state": "clean failed"}, 1},
			{nodes, nil, 4},
		}, 15*time.Second)
	}
	t.Logf("whole test: %.1f s", time.Since(start).Seconds())
}

func tailLines(b []byte, n int) string {
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// TestLabProductionLayout runs the lab as a real conductor host runs: `ironwork serve`
// inside the provisioning namespace with no namespace setting and its default API address,
// OpenIPMI's ipmi_sim as the BMCs (cipher suite 3), the deploy kernel, ramdisk and image
// served over HTTP by a separate server (busybox httpd), nodes enrolled with Ironic's
// standard fields only. Two machines: one whose CPU has RDRAND, one with no RNG at all
// (no virtio-rng, qemu64 without RDRAND). Each goes manage, provide (cleaning), deploy
// straight after cleaning, boots the deployed disk, undeploy (cleaning), available. It
// replaces TestLabIPMISim (same ground, plus undeploy).
func TestLabProductionLayout(tt *testing.T) {
	t := newLabT(tt)
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and taps")
	}
	if _, err := exec.LookPath("ipmi_sim"); err != nil {
		t.Skip("ipmi_sim is not installed (Debian package openipmi; scripts/deps.sh)")
	}
	if _, err := exec.LookPath("busybox"); err != nil {
		t.Skip("busybox is not installed (its httpd is the image server; Debian package busybox, scripts/deps.sh)")
	}
	kernel := lab.FindKernel()
	if err := lab.Check(kernel); err != nil {
		t.Skip(err)
	}
	t.Parallel() // two labs at a time (scripts/test.sh: -parallel 2)
	ironworkBin, agentBin := labBinaries(t)
	dir := filepath.Join(t.TempDir(), "lab")
	ns := fmt.Sprintf("iwlabp-%d", os.Getpid()%10000)
	var logs bytes.Buffer
	nodes := []lab.NodeSpec{
		{Name: "rdrand", Firmware: "bios", Power: "ipmi", BMC: "ipmi_sim", RNG: "none", CPU: "max"},
		{Name: "no-rng", Firmware: "bios", Power: "ipmi", BMC: "ipmi_sim", RNG: "none", CPU: "qemu64,-rdrand"},
	}
	start := time.Now()
	runningLabs.track(t, dir)
	st, err := lab.Up(context.Background(), lab.Options{Dir: dir, Netns: ns, Subnet: "10.215.0", Ironwork: ironworkBin,
		Agent: agentBin, KernelDir: kernel, Cache: labCache(), Log: &logs, Nodes: nodes, Layout: lab.LayoutProduction})
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
	t.Logf("lab up (ramdisk, image, namespace, image server, ipmi_sim, server, enrolment): %.1f s", time.Since(start).Seconds())
	files := []string{"serve.log", "images.log"}
	for _, n := range nodes {
		files = append(files, n.Name+".chassis.log", "ipmi_sim-"+n.Name+".log", n.Name+".serial.log")
	}
	defer t.dumpIfFailed(dir, 40, files...)

	// The layout is what it claims: serve runs in the namespace, with no namespace setting.
	if cfg, err := os.ReadFile(filepath.Join(dir, "ironwork.toml")); err != nil || bytes.Contains(cfg, []byte("provisioning_netns")) || bytes.Contains(cfg, []byte("listen")) {
		t.Errorf("the server's configuration sets a namespace or an address (%v):\n%s", err, cfg)
	}
	want, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	var nsIno string
	if fi, err := os.Stat("/run/netns/" + ns); err == nil {
		nsIno = fmt.Sprintf("net:[%d]", fi.Sys().(*syscall.Stat_t).Ino)
	}
	for _, p := range st.Procs {
		got, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", p.PID))
		if err != nil || got == want || got != nsIno {
			t.Errorf("%s (pid %d) runs in network namespace %s (%v), want %s (%s), not this test's %s", p.Name, p.PID, got, err, nsIno, ns, want)
		}
	}
	ctx := context.Background()
	c := st.Client()
	for _, n := range st.Nodes {
		var node map[string]any
		if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+n.UUID, nil, &node); err != nil {
			t.Fatal(err)
		}
		di, _ := node["driver_info"].(map[string]any)
		if k, _ := di["deploy_kernel"].(string); !strings.HasPrefix(k, "http://") || node["boot_interface"] != "ipxe" || node["deploy_interface"] != "direct" {
			t.Errorf("%s: deploy_kernel %q, boot_interface %v, deploy_interface %v: want an HTTP URL and the ipmi defaults ipxe and direct",
				n.Name, k, node["boot_interface"], node["deploy_interface"])
		}
	}

	res := lab.Cycle(ctx, st, []string{"rdrand", "no-rng"}, lab.CycleOptions{Timeout: 4 * time.Minute})
	for _, r := range res {
		for _, p := range r.Phases {
			t.Logf("%-6s: %-30s %6.1f s", r.Node, p.Name, p.Duration.Seconds())
		}
		n, _ := st.Node(r.Node)
		if r.Err != nil {
			// The agent's own reason, when it gave up (a ramdisk that found no DHCP lease).
			b, _ := os.ReadFile(n.Serial)
			var fatal string
			for _, l := range strings.Split(string(b), "\n") {
				if strings.Contains(l, "ironwork-agent: FATAL") {
					fatal = strings.TrimSpace(l)
				}
			}
			t.Errorf("%s: %v; the agent's last fatal error on the serial console: %q", r.Node, r.Err, fatal)
			continue
		}
		if !strings.Contains(r.BootedLine, "firmware=bios") {
			t.Errorf("%s: the instance reported %q", r.Node, r.BootedLine)
		}
		f, err := os.Open(n.Disk)
		if err != nil {
			t.Fatal(err)
		}
		head := make([]byte, 1<<20)
		_, err = f.ReadAt(head, 0)
		f.Close()
		if err != nil || !bytes.Equal(head, make([]byte, 1<<20)) {
			t.Errorf("%s: cleaning after undeploy left the disk's first MiB as it was (%v)", r.Node, err)
		}
		// ipmi_sim, not something else, drove the machine: its hook was asked for the power
		// state and told to power on and to boot from the network, with its device argument.
		calls, err := os.ReadFile(filepath.Join(dir, r.Node+".chassis.log"))
		if err != nil {
			t.Errorf("%s: the chassis_control hook left no log: %v", r.Node, err)
			continue
		}
		for _, want := range []string{" 0x20 get power", " 0x20 set power 1", " 0x20 set boot pxe"} {
			if !bytes.Contains(calls, []byte(want+"\n")) {
				t.Errorf("%s: ipmi_sim never called its hook with %q", r.Node, strings.TrimSpace(want))
			}
		}
	}
	// The CPUs are what the nodes claim: Linux seeds its CRNG from RDRAND early in its first
	// boot, before it starts /init, when the CPU has it; without RDRAND or virtio-rng, only
	// later, from jitter, while the agent already runs (so lookup did not wait for it).
	for _, n := range st.Nodes {
		b, _ := os.ReadFile(n.Serial)
		crng, init := -1, -1
		var first string
		for i, l := range strings.Split(string(b), "\n") {
			if init < 0 && strings.Contains(l, "Run /init as init process") {
				init = i
			}
			if strings.Contains(l, "crng init done") {
				crng, first = i, strings.TrimSpace(l)
				break
			}
		}
		t.Logf("%s (-cpu %s, rng %s): first CRNG line on the serial console: %q", n.Name, n.CPU, n.RNG, first)
		seededBeforeInit := crng >= 0 && (init < 0 || crng < init)
		if (n.Name == "rdrand") != seededBeforeInit {
			t.Errorf("%s: CRNG line %q (line %d, /init at line %d): want it before /init exactly when the CPU has RDRAND", n.Name, first, crng, init)
		}
	}
	// Every agent served its command API over TLS (automatic TLS, the default), and the
	// conductor pinned each certificate: the cycle's cleaning and deploy went through them.
	serveLog, _ := os.ReadFile(filepath.Join(dir, "serve.log"))
	for _, n := range st.Nodes {
		b, _ := os.ReadFile(n.Serial)
		var made []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "ironwork-agent: auto-TLS: certificate for 10.215.0.") {
				made = append(made, strings.TrimSpace(l))
			}
		}
		t.Logf("%s: %d agent boots made a certificate; the first: %q", n.Name, len(made), strings.Join(made[:min(1, len(made))], ""))
		if len(made) == 0 { // the serial file holds the last boot, the cleaning after undeploy
			t.Errorf("%s: the agent's console shows no certificate made", n.Name)
		}
	}
	// Three ramdisk boots per node: cleaning, deploy, cleaning after undeploy.
	if c := bytes.Count(serveLog, []byte("agent certificate pinned")); c < 3*len(st.Nodes) {
		t.Errorf("the server pinned %d agent certificates, want at least %d", c, 3*len(st.Nodes))
	}
	// The image server, not the conductor's boot service, served the ramdisk and the image.
	served, _ := os.ReadFile(filepath.Join(dir, "images.log"))
	for _, f := range []string{"/ironwork-deploy.kernel", "/ironwork-deploy.initramfs", "/image.raw"} {
		if !bytes.Contains(served, []byte(f)) {
			t.Errorf("the image server's log shows no request for %s", f)
		}
	}
	t.Logf("whole test: %.1f s", time.Since(start).Seconds())
}
