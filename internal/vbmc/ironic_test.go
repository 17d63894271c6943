package vbmc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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

	"github.com/ironwork/ironwork/internal/ramdisk"
)

// Where Debian's isolinux package puts what the real Ironic needs to build a BIOS boot ISO.
const (
	isolinuxBin = "/usr/lib/ISOLINUX/isolinux.bin"
	ldlinuxC32  = "/usr/lib/syslinux/modules/bios/ldlinux.c32"
)

// TestRealIronicDrivesVirtualMedia enrols a vbmc Redfish machine (SeaBIOS QEMU, its NIC on
// QEMU's user network, so 10.0.2.2 is the host's loopback, and the agent's port forwarded from
// the host's) in the real OpenStack Ironic (Debian's 21.4, started here on loopback as
// ../shared/tools/real-ironic.sh does) with Ironic's own redfish-virtual-media boot interface
// and Ironwork's deploy ramdisk, and provides it. Ironic must build its ISO (isolinux), have
// the vbmc insert it (InsertMedia from Ironic's HTTP root), set a one-time Cd boot in Legacy
// mode and power on; the machine must boot Ironic's ISO (the kernel's command line carries
// Ironic's boot_method=vmedia), Ironwork's agent must look itself up at Ironic, and Ironic's
// automated cleaning (through the agent's command API) must end in available with the virtual
// CD empty. No deploy: Ironic checks image URLs from the
// conductor, and no address is reachable both from it and from QEMU's user network.
// Skips when Ironic, isolinux, QEMU or the test kernel are absent.
func TestRealIronicDrivesVirtualMedia(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	for _, f := range []string{"/usr/bin/ironic", "/usr/bin/ironic-dbsync"} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("the real Ironic is not installed (%s): ../shared/tools/real-ironic.sh install", f)
		}
	}
	for _, f := range []string{isolinuxBin, ldlinuxC32} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("Ironic's BIOS boot ISO needs %s: apt-get install isolinux syslinux-common (scripts/deps.sh)", f)
		}
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 is not installed")
	}
	kernels, _ := filepath.Glob("/var/cache/ironwork/kernel/*/vmlinuz")
	if len(kernels) == 0 {
		t.Skip("no kernel in /var/cache/ironwork/kernel (run scripts/kernel.sh)")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is needed to build the agent")
	}
	dir := t.TempDir()
	begin := time.Now()
	agent := filepath.Join(dir, "ironwork-agent")
	build := exec.Command(goBin, "build", "-o", agent, "../../cmd/ironwork-agent")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the agent: %v: %s", err, out)
	}
	rd, err := ramdisk.Build(context.Background(), ramdisk.BuildConfig{KernelDir: filepath.Dir(kernels[0]), Agent: agent, Output: filepath.Join(dir, "ramdisk")})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("agent and ramdisk built in %.1f s", time.Since(begin).Seconds())

	// Ironic's HTTP root, served on loopback for the BMC (Ironic serves nothing itself).
	ironicDir := filepath.Join(dir, "ironic")
	httpRoot := filepath.Join(ironicDir, "httpboot")
	for _, d := range []string{"state", "tmp", "tftpboot/master_images", "httpboot", "images", "master_images", "master_iso_images", "certificates", "locks"} {
		if err := os.MkdirAll(filepath.Join(ironicDir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var servedMu sync.Mutex
	var served bytes.Buffer // what the BMC fetched from Ironic's HTTP root
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	files := http.FileServer(http.Dir(httpRoot))
	httpSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		servedMu.Lock()
		fmt.Fprintf(&served, "%s %s\n", r.Method, r.URL.Path)
		servedMu.Unlock()
		files.ServeHTTP(w, r)
	})}
	servedLog := func() string {
		servedMu.Lock()
		defer servedMu.Unlock()
		return strings.Join(strings.Fields(served.String()), " ")
	}
	go httpSrv.Serve(httpLn)
	t.Cleanup(func() { httpSrv.Close() })

	// The machine and its BMC.
	mac := "52:54:00:a1:c0:01"
	disk := filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 8<<30); err != nil {
		t.Fatal(err)
	}
	serial := filepath.Join(dir, "serial.log")
	// Ironic calls the agent back: the agent listens on agentPort, which QEMU forwards from
	// the host's loopback, and advertises 127.0.0.1 (Ironic's kernel_append_params below).
	agentPort := freeTCPPort(t)
	v := startVBMC(t, []string{"qemu-system-x86_64", "-accel", "tcg", "-m", "768", "-nodefaults", "-display", "none", "-monitor", "none",
		"-serial", "file:" + serial, "-no-reboot", "-device", "virtio-rng-pci",
		"-netdev", fmt.Sprintf("user,id=n0,hostfwd=tcp:127.0.0.1:%d-:%d", agentPort, agentPort), "-device", "virtio-net-pci,netdev=n0,mac=" + mac + ",romfile=",
		"-drive", "file=" + disk + ",if=virtio,format=raw"})
	m := v.Machine("vm1")
	t.Cleanup(func() { m.PowerOff() })

	// The real Ironic.
	port := freeTCPPort(t)
	conf := fmt.Sprintf(`[DEFAULT]
host = localhost
auth_strategy = noauth
rpc_transport = none
state_path = %[1]s/state
tempdir = %[1]s/tmp
debug = true
use_stderr = false
log_dir = %[1]s
enabled_hardware_types = redfish
enabled_boot_interfaces = redfish-virtual-media
enabled_deploy_interfaces = direct
enabled_inspect_interfaces = no-inspect
enabled_management_interfaces = redfish
enabled_network_interfaces = noop
default_network_interface = noop
enabled_power_interfaces = redfish
enabled_raid_interfaces = no-raid,agent
enabled_rescue_interfaces = no-rescue
enabled_bios_interfaces = no-bios
enabled_console_interfaces = no-console
enabled_vendor_interfaces = no-vendor
isolinux_bin = %[4]s
ldlinux_c32 = %[5]s

[conductor]
file_url_allowed_paths = %[6]s

[api]
host_ip = 127.0.0.1
port = %[2]d

[database]
connection = sqlite:///%[1]s/ironic.sqlite

[dhcp]
dhcp_provider = none

[deploy]
http_root = %[1]s/httpboot
http_url = http://%[3]s
iso_master_path = %[1]s/master_iso_images
default_boot_mode = bios

[redfish]
use_swift = false
kernel_append_params = console=ttyS0 nofb nomodeset no_timer_check ipa-advertise-host=127.0.0.1 ipa-listen-port=%[7]d

[service_catalog]
endpoint_override = http://10.0.2.2:%[2]d

[pxe]
tftp_root = %[1]s/tftpboot
tftp_master_path = %[1]s/tftpboot/master_images
images_path = %[1]s/images
instance_master_path = %[1]s/master_images

[agent]
certificates_path = %[1]s/certificates

[oslo_concurrency]
lock_path = %[1]s/locks
`, ironicDir, port, httpLn.Addr().String(), isolinuxBin, ldlinuxC32, filepath.Join(dir, "ramdisk"), agentPort)
	confPath := filepath.Join(ironicDir, "ironic.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("/usr/bin/python3", "/usr/bin/ironic-dbsync", "--config-file", confPath, "create_schema").CombinedOutput(); err != nil {
		t.Fatalf("ironic-dbsync: %v: %s", err, out)
	}
	ironic := exec.Command("/usr/bin/python3", "/usr/bin/ironic", "--config-file", confPath)
	ironic.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := ironic.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-ironic.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { ironic.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			syscall.Kill(-ironic.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(ironicDir, "ironic.log"))
			t.Logf("--- ironic.log (tail) ---\n%s", tailOf(b, 60))
			b, _ = os.ReadFile(serial)
			t.Logf("--- serial console (tail) ---\n%s", tailOf(b, 40))
		}
	}()
	c := &ironicClient{base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	ctx := context.Background()
	ready := time.Now().Add(3 * time.Minute)
	for {
		var drivers struct{ Drivers []struct{ Name string } }
		if err := c.do(ctx, http.MethodGet, "/v1/drivers", nil, &drivers); err == nil && len(drivers.Drivers) > 0 {
			break
		}
		if time.Now().After(ready) {
			t.Fatal("the real Ironic did not answer /v1/drivers within 3 minutes")
		}
		time.Sleep(time.Second)
	}
	t.Logf("the real Ironic is up at %s (%.1f s since the start of the test)", c.base, time.Since(begin).Seconds())

	var node struct{ UUID string }
	if err := c.do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "vbmc-vm1", "driver": "redfish",
		"boot_interface": "redfish-virtual-media", "deploy_interface": "direct",
		"properties": map[string]any{"capabilities": "boot_mode:bios", "cpu_arch": "x86_64"},
		"driver_info": map[string]any{"redfish_address": v.RedfishURL, "redfish_system_id": "/redfish/v1/Systems/vm1",
			"redfish_username": "admin", "redfish_password": "password",
			"deploy_kernel": "file://" + rd.KernelPath, "deploy_ramdisk": "file://" + rd.InitramfsPath}}, &node); err != nil {
		t.Fatalf("enrol: %v", err)
	}
	if err := c.do(ctx, http.MethodPost, "/v1/ports", map[string]any{"node_uuid": node.UUID, "address": mac}, nil); err != nil {
		t.Fatalf("port: %v", err)
	}
	if err := c.provision(ctx, node.UUID, "manage", "manageable", 2*time.Minute); err != nil {
		t.Fatalf("manage: %v", err)
	}
	t.Logf("manageable (Ironic read the power state through sushy)")

	start := time.Now()
	if err := c.do(ctx, http.MethodPut, "/v1/nodes/"+node.UUID+"/states/provision", map[string]any{"target": "provide"}, nil); err != nil {
		t.Fatalf("provide: %v", err)
	}
	// Ironic inserts its ISO, sets a one-time Cd boot and powers on.
	var inserted string
	for deadline := time.Now().Add(5 * time.Minute); inserted == "" || !m.On(); {
		inserted = m.Media()
		var n struct {
			ProvisionState string `json:"provision_state"`
			LastError      string `json:"last_error"`
		}
		if err := c.do(ctx, http.MethodGet, "/v1/nodes/"+node.UUID, nil, &n); err == nil && strings.HasSuffix(n.ProvisionState, "failed") {
			t.Fatalf("provide: %s: %s", n.ProvisionState, n.LastError)
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ironic did not insert media and power on within 5 minutes (media %q, on %v)", inserted, m.On())
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("Ironic inserted %s and powered on %.1f s after provide; BMC boot mode %s", inserted, time.Since(start).Seconds(), m.BootMode())
	if !strings.HasPrefix(inserted, "http://"+httpLn.Addr().String()+"/") {
		t.Errorf("the inserted image %s is not from Ironic's http_url", inserted)
	}
	args := strings.Join(m.LastArgs(), " ")
	if !strings.Contains(args, "ide-cd,drive=vmedia-cd,bootindex=0") || !strings.Contains(args, "-boot once=d") {
		t.Errorf("QEMU was not started to boot the CD once: %s", args)
	}
	if m.BootMode() != ModeLegacy {
		t.Errorf("boot mode %s, want Legacy (the node's boot_mode:bios)", m.BootMode())
	}

	// The machine boots Ironic's ISO and the agent looks itself up at Ironic.
	var sawKernel, sawLookup bool
	for deadline := time.Now().Add(8 * time.Minute); time.Now().Before(deadline) && !(sawKernel && sawLookup); {
		b, _ := os.ReadFile(serial)
		if !sawKernel && bytes.Contains(b, []byte("boot_method=vmedia")) {
			sawKernel = true
			t.Logf("the kernel from Ironic's ISO runs (boot_method=vmedia on its command line) %.1f s after provide", time.Since(start).Seconds())
		}
		lb, _ := os.ReadFile(filepath.Join(ironicDir, "ironic.log"))
		if !sawLookup && (bytes.Contains(lb, []byte(`"GET /v1/lookup`)) || bytes.Contains(lb, []byte(`"POST /v1/heartbeat/`))) {
			sawLookup = true
			t.Logf("the agent reached Ironic's lookup %.1f s after provide", time.Since(start).Seconds())
		}
		time.Sleep(2 * time.Second)
	}
	if !sawKernel {
		t.Fatalf("the machine did not boot Ironic's ISO within 8 minutes")
	}
	if !sawLookup {
		t.Fatalf("the agent did not look itself up at Ironic within 8 minutes")
	}
	// Cleaning: Ironic runs its steps through the agent, then ejects.
	var n struct {
		ProvisionState string `json:"provision_state"`
		LastError      string `json:"last_error"`
		CleanStep      any    `json:"clean_step"`
	}
	for deadline := time.Now().Add(6 * time.Minute); time.Now().Before(deadline); time.Sleep(3 * time.Second) {
		if err := c.do(ctx, http.MethodGet, "/v1/nodes/"+node.UUID, nil, &n); err != nil {
			t.Fatal(err)
		}
		if n.ProvisionState == "available" || strings.HasSuffix(n.ProvisionState, "failed") {
			break
		}
	}
	t.Logf("after provide: %s in %.1f s (last_error %q, clean_step %v); the BMC served: %s", n.ProvisionState, time.Since(start).Seconds(),
		n.LastError, n.CleanStep, servedLog())
	if n.ProvisionState != "available" {
		t.Fatalf("automated cleaning through Ironic's virtual media ended in %s: %s", n.ProvisionState, n.LastError)
	}
	if m.Media() != "" {
		t.Errorf("cleaning finished but the virtual CD still holds %s", m.Media())
	}
	// The agent served its API over TLS (automatic TLS): Ironic stored the certificate the
	// agent's heartbeat carried and verified its calls against it.
	crt, err := os.ReadFile(filepath.Join(ironicDir, "certificates", node.UUID+".crt"))
	if err != nil || !bytes.Contains(crt, []byte("BEGIN CERTIFICATE")) {
		t.Errorf("Ironic stored no agent certificate (%v): the agent did not use automatic TLS", err)
	}
}

// ironicClient is the smallest Ironic API client: JSON in and out, microversion 1.82 (the
// newest of Ironic 21.4).
type ironicClient struct{ base string }

func (c *ironicClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-OpenStack-Ironic-API-Version", "1.82")
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil && len(b) > 0 {
		return json.Unmarshal(b, out)
	}
	return nil
}

func (c *ironicClient) provision(ctx context.Context, uuid, verb, want string, within time.Duration) error {
	if err := c.do(ctx, http.MethodPut, "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": verb}, nil); err != nil {
		return err
	}
	deadline := time.Now().Add(within)
	for {
		var n struct {
			ProvisionState string `json:"provision_state"`
			LastError      string `json:"last_error"`
		}
		if err := c.do(ctx, http.MethodGet, "/v1/nodes/"+uuid, nil, &n); err != nil {
			return err
		}
		if n.ProvisionState == want {
			return nil
		}
		if time.Now().After(deadline) || strings.HasSuffix(n.ProvisionState, "failed") || (n.ProvisionState == "enroll" && n.LastError != "") {
			return fmt.Errorf("%s (last_error %q); want %s", n.ProvisionState, n.LastError, want)
		}
		time.Sleep(time.Second)
	}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func tailOf(b []byte, n int) string {
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}
