package vbmc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/configdrive"
	"github.com/ironwork/ironwork/internal/driver/ipmi"
	"github.com/ironwork/ironwork/internal/driver/redfish"
	"github.com/ironwork/ironwork/internal/lockedbuf"
)

// isoServer serves small ISO 9660 images named after their path on loopback, and one
// file that is not an image.
func isoServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/notaniso":
			w.Write(bytes.Repeat([]byte("x"), 64<<10))
		case strings.HasSuffix(r.URL.Path, ".iso") && r.URL.Path != "/missing.iso":
			img, err := configdrive.ISO("TEST", []configdrive.File{{Path: "name", Data: []byte(r.URL.Path)}, {Path: "pad", Data: make([]byte, 40<<10)}})
			if err != nil {
				t.Error(err)
			}
			w.Write(img)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// startVBMC serves one machine whose "QEMU" is the given command.
func startVBMC(t *testing.T, command []string) *VBMC {
	t.Helper()
	v, err := Start(Config{Username: "admin", Password: "password", RedfishListen: "127.0.0.1:0",
		Machines: []MachineConfig{{Name: "vm1", IPMIListen: "127.0.0.1:0", Command: command}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { v.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); v.Close(); <-done })
	return v
}

func need(t *testing.T, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Fatalf("%s is not installed: scripts/deps.sh installs Debian's %s", tool, pkg)
	}
}

func ipmitool(t *testing.T, v *VBMC, args ...string) string {
	t.Helper()
	host, port, _ := strings.Cut(v.IPMIAddrs["vm1"], ":")
	base := []string{"-I", "lanplus", "-C", "3", "-H", host, "-p", port, "-U", "admin", "-P", "password"}
	out, err := exec.Command("ipmitool", append(base, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ipmitool %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestIPMIToolDrivesTheMachine(t *testing.T) {
	need(t, "ipmitool", "ipmitool")
	v := startVBMC(t, []string{"sh", "-c", "exec sleep 300", "vm"})
	m := v.Machine("vm1")
	if out := ipmitool(t, v, "chassis", "power", "status"); !strings.Contains(out, "Chassis Power is off") {
		t.Fatalf("initial status: %s", out)
	}
	ipmitool(t, v, "chassis", "bootdev", "pxe")
	if dev, persistent := m.Boot(); dev != BootPXE || persistent {
		t.Fatalf("after bootdev pxe: %s %v", dev, persistent)
	}
	ipmitool(t, v, "chassis", "power", "on")
	if !m.On() || !strings.Contains(strings.Join(m.LastArgs(), " "), "-boot once=n") {
		t.Fatalf("power on: running %v, args %v", m.On(), m.LastArgs())
	}
	if out := ipmitool(t, v, "chassis", "power", "status"); !strings.Contains(out, "Chassis Power is on") {
		t.Fatalf("status after power on: %s", out)
	}
	ipmitool(t, v, "chassis", "bootdev", "disk", "options=persistent")
	ipmitool(t, v, "chassis", "power", "off")
	if m.On() {
		t.Fatal("machine still running after power off")
	}
	ipmitool(t, v, "chassis", "power", "on")
	if !strings.Contains(strings.Join(m.LastArgs(), " "), "-boot order=c") {
		t.Fatalf("persistent disk boot: args %v", m.LastArgs())
	}
}

func TestIronworkDriversAgainstTheVBMC(t *testing.T) {
	v := startVBMC(t, []string{"sh", "-c", "exec sleep 300", "vm"})
	ctx := context.Background()
	host, port, _ := strings.Cut(v.IPMIAddrs["vm1"], ":")
	drivers := map[string]struct {
		p    conductor.Power
		m    conductor.Management
		info ironwork.JSONObject
	}{
		"ipmi": {ipmi.Interface{PollInterval: 20 * time.Millisecond}, ipmi.Interface{},
			ironwork.JSONObject{"ipmi_address": host, "ipmi_port": port, "ipmi_username": "admin", "ipmi_password": "password"}},
		"redfish": {redfish.Interface{PollInterval: 20 * time.Millisecond}, redfish.Interface{},
			ironwork.JSONObject{"redfish_address": v.RedfishURL, "redfish_system_id": "/redfish/v1/Systems/vm1",
				"redfish_username": "admin", "redfish_password": "password"}},
	}
	// In this order: the redfish subtest leaves the machine on with a CD inserted, which the
	// ipmi subtest's power-on check would see (map order made this fail one run in two).
	for _, name := range []string{"ipmi", "redfish"} {
		d := drivers[name]
		t.Run(name, func(t *testing.T) {
			tk := &conductor.Task{Node: &ironwork.Node{UUID: "n-" + name, DriverInfo: d.info}}
			if err := d.m.SetBootDevice(ctx, tk, conductor.BootDevice{Device: conductor.BootPXE}); err != nil {
				t.Fatal(err)
			}
			if _, redfish := d.p.(conductor.VirtualMedia); redfish {
				// The boot mode reaches the BMC with every boot device change.
				if got := v.Machine("vm1").BootMode(); got != ModeUEFI {
					t.Fatalf("boot mode recorded after a PXE boot of a node with no mode (default uefi): %q", got)
				}
				bios := &conductor.Task{Node: &ironwork.Node{UUID: tk.Node.UUID, DriverInfo: d.info,
					Properties: ironwork.JSONObject{"capabilities": "boot_mode:bios"}}}
				if err := d.m.SetBootDevice(ctx, bios, conductor.BootDevice{Device: conductor.BootDisk, Persistent: true}); err != nil {
					t.Fatal(err)
				}
				if got := v.Machine("vm1").BootMode(); got != ModeLegacy {
					t.Fatalf("boot mode recorded for a bios node: %q", got)
				}
				if err := d.m.SetBootDevice(ctx, tk, conductor.BootDevice{Device: conductor.BootPXE}); err != nil {
					t.Fatal(err)
				}
			}
			if err := d.p.SetPowerState(ctx, tk, ironwork.PowerOn, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(v.Machine("vm1").LastArgs(), " "), "-boot once=n") {
				t.Fatalf("args %v", v.Machine("vm1").LastArgs())
			}
			if err := d.p.SetPowerState(ctx, tk, ironwork.PowerOff, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			if st, err := d.p.PowerState(ctx, tk); err != nil || st != ironwork.PowerOff {
				t.Fatalf("power state: %s %v", st, err)
			}
			vm, ok := d.p.(conductor.VirtualMedia)
			if !ok {
				return // IPMI has no virtual media
			}
			isos := isoServer(t)
			for _, image := range []string{isos + "/a.iso", isos + "/b.iso"} {
				if err := vm.InsertVirtualMedia(ctx, tk, image); err != nil {
					t.Fatal(err)
				}
				if got := v.Machine("vm1").Media(); got != image {
					t.Fatalf("virtual CD holds %q, want %q", got, image)
				}
			}
			if err := d.p.SetPowerState(ctx, tk, ironwork.PowerOn, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			args := strings.Join(v.Machine("vm1").LastArgs(), " ")
			file := regexp.MustCompile(`media=cdrom,readonly=on,format=raw,file=(\S+)`).FindStringSubmatch(args)
			if !strings.Contains(args, "-device ide-cd,drive=vmedia-cd") {
				t.Fatalf("QEMU arguments lack the CD device: %s", args)
			}
			if file == nil {
				t.Fatalf("QEMU arguments lack the CD: %s", args)
			}
			if b, err := os.ReadFile(file[1]); err != nil || !bytes.Contains(b, []byte("b.iso")) {
				t.Fatalf("the CD QEMU gets is not the downloaded b.iso: %v", err)
			}
			if err := vm.EjectVirtualMedia(ctx, tk); err != nil || v.Machine("vm1").Media() != "" {
				t.Fatalf("eject: %v, drive holds %q", err, v.Machine("vm1").Media())
			}
			if _, err := os.Stat(file[1]); !os.IsNotExist(err) {
				t.Fatalf("the downloaded image outlives its ejection: %v", err)
			}
			// Refusals name the reason, and leave the drive empty.
			for _, c := range []struct{ image, want string }{
				{isos + "/missing.iso", "404"},
				{isos + "/notaniso", "not an ISO 9660 image"},
				{"http://192.0.2.1/x.iso", "only over http(s) from loopback or private"},
				{"ftp://127.0.0.1/x.iso", "only over http(s)"},
				{"http://127.0.0.1:1/x.iso", "connection refused"},
			} {
				err := vm.InsertVirtualMedia(ctx, tk, c.image)
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("insert %s: %v; want an error naming %q", c.image, err, c.want)
				}
				if got := v.Machine("vm1").Media(); got != "" {
					t.Errorf("after the refused %s the drive holds %q", c.image, got)
				}
			}
		})
	}
}

// TestSushyAgainstTheRedfishService uses the Redfish client Ironic itself uses (sushy).
func TestSushyAgainstTheRedfishService(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import sushy").Run(); err != nil {
		t.Fatal("python3-sushy is not installed: scripts/deps.sh installs it")
	}
	v := startVBMC(t, []string{"sh", "-c", "exec sleep 300", "vm"})
	script := fmt.Sprintf(`
import sushy
s = sushy.Sushy(%q, username="admin", password="password")
sys = s.get_system("/redfish/v1/Systems/vm1")
v = lambda x: str(getattr(x, "value", x)).lower()
print("power", v(sys.power_state))
sys.set_system_boot_source(sushy.BOOT_SOURCE_TARGET_PXE, enabled=sushy.BOOT_SOURCE_ENABLED_ONCE)
sys.refresh()
print("boot", v(sys.boot.target), v(sys.boot.enabled))
sys.reset_system(sushy.RESET_ON)
sys.refresh()
print("power", v(sys.power_state))
`, v.RedfishURL+"/redfish/v1")
	out, err := exec.Command("/usr/bin/python3", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("sushy: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "power off") || !strings.Contains(string(out), "boot pxe once") || !strings.Contains(string(out), "power on") {
		t.Fatalf("sushy saw:\n%s", out)
	}
	if !v.Machine("vm1").On() {
		t.Fatal("the machine did not start")
	}
}

// TestSushyVirtualMedia has sushy (Ironic's Redfish client) find the virtual CD through the
// system's manager, insert an image, set the boot mode and a one-time Cd boot, and eject, as
// Ironic's redfish-virtual-media boot interface does.
func TestSushyVirtualMedia(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import sushy").Run(); err != nil {
		t.Fatal("python3-sushy is not installed: scripts/deps.sh installs it")
	}
	v := startVBMC(t, []string{"sh", "-c", "exec sleep 300", "vm"})
	isos := isoServer(t)
	script := fmt.Sprintf(`
import sushy
s = sushy.Sushy(%q, username="admin", password="password")
sys = s.get_system("/redfish/v1/Systems/vm1")
v = lambda x: str(getattr(x, "value", x))
for m in sys.managers:
    for vm in m.virtual_media.get_members():
        print("drive", vm.identity, sorted(v(t) for t in vm.media_types), vm.inserted)
        vm.insert_media(%q, inserted=True, write_protected=True)
        vm.refresh()
        print("inserted", vm.inserted, vm.image)
sys.set_system_boot_options(sushy.BOOT_SOURCE_TARGET_CD, enabled=sushy.BOOT_SOURCE_ENABLED_ONCE, mode=sushy.BOOT_SOURCE_MODE_UEFI)
sys.refresh()
print("boot", v(sys.boot.target), v(sys.boot.enabled), v(sys.boot.mode))
for m in sys.managers:
    for vm in m.virtual_media.get_members():
        vm.eject_media()
        vm.refresh()
        print("ejected", vm.inserted)
`, v.RedfishURL+"/redfish/v1", isos+"/deploy.iso")
	out, err := exec.Command("/usr/bin/python3", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("sushy: %v\n%s", err, out)
	}
	for _, want := range []string{"drive Cd ['CD', 'DVD'] False", "inserted True " + isos + "/deploy.iso", "boot Cd Once UEFI", "ejected False"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("sushy's output lacks %q:\n%s", want, out)
		}
	}
	if m := v.Machine("vm1"); m.Media() != "" || m.BootMode() != ModeUEFI {
		t.Errorf("after sushy: media %q, boot mode %s", m.Media(), m.BootMode())
	}
}

// TestQEMUMachine powers a real QEMU virtual machine (TCG) on and off over IPMI.
func TestQEMUMachine(t *testing.T) {
	need(t, "qemu-system-x86_64", "qemu-system-x86")
	need(t, "ipmitool", "ipmitool")
	v := startVBMC(t, []string{"qemu-system-x86_64", "-accel", "tcg", "-m", "64", "-nodefaults", "-display", "none",
		"-serial", "null", "-monitor", "none"})
	m := v.Machine("vm1")
	ipmitool(t, v, "chassis", "bootdev", "pxe")
	ipmitool(t, v, "chassis", "power", "on")
	time.Sleep(500 * time.Millisecond)
	if !m.On() {
		t.Fatal("QEMU is not running after power on")
	}
	if out := ipmitool(t, v, "chassis", "power", "status"); !strings.Contains(out, "Chassis Power is on") {
		t.Fatalf("status: %s", out)
	}
	if args := strings.Join(m.LastArgs(), " "); !strings.Contains(args, "-boot once=n") {
		t.Fatalf("QEMU started without PXE first: %s", args)
	}
	ipmitool(t, v, "chassis", "power", "off")
	if m.On() {
		t.Fatal("QEMU still running after power off")
	}
	ipmitool(t, v, "chassis", "bootdev", "disk", "options=persistent")
	ipmitool(t, v, "chassis", "power", "on")
	time.Sleep(300 * time.Millisecond)
	if args := strings.Join(m.LastArgs(), " "); !m.On() || !strings.Contains(args, "-boot order=c") {
		t.Fatalf("QEMU after bootdev disk: running %v, %s", m.On(), args)
	}
	if out := ipmitool(t, v, "mc", "info"); !strings.Contains(out, "IPMI Version") {
		t.Fatalf("ipmitool mc info (Get Device ID): %s", out)
	}
	ipmitool(t, v, "chassis", "power", "off")
}

// FuzzIPMIPackets sends arbitrary UDP datagrams to a machine's IPMI port: the BMC must drop
// what it cannot parse and keep serving a real client afterwards.
func FuzzIPMIPackets(f *testing.F) {
	// An RMCP presence ping, a Get Channel Authentication Capabilities request, an RMCP+ open
	// session request header, and junk.
	f.Add([]byte{0x06, 0x00, 0xff, 0x06, 0x00, 0x00, 0x11, 0xbe, 0x80, 0x00, 0x00, 0x00})
	f.Add([]byte{0x06, 0x00, 0xff, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x20, 0x18, 0xc8, 0x81, 0x00, 0x38, 0x8e, 0x04, 0xb5})
	f.Add([]byte{0x06, 0x00, 0xff, 0x07, 0x06, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00})
	f.Add([]byte("not ipmi at all"))
	v, err := Start(Config{Username: "admin", Password: "password",
		Machines: []MachineConfig{{Name: "vm1", IPMIListen: "127.0.0.1:0", Command: []string{"sh", "-c", "exec sleep 300", "vm"}}}}, nil)
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go v.Serve(ctx)
	defer func() { cancel(); v.Close() }()
	conn, err := net.Dial("udp", v.IPMIAddrs["vm1"])
	if err != nil {
		f.Fatal(err)
	}
	defer conn.Close()
	f.Fuzz(func(t *testing.T, pkt []byte) {
		conn.Write(pkt)
		conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		buf := make([]byte, 1024)
		conn.Read(buf) // an answer or nothing; either is fine
	})
	host, port, _ := strings.Cut(v.IPMIAddrs["vm1"], ":")
	tk := &conductor.Task{Node: &ironwork.Node{UUID: "after-fuzz", DriverInfo: ironwork.JSONObject{"ipmi_address": host,
		"ipmi_port": port, "ipmi_username": "admin", "ipmi_password": "password"}}}
	if _, err := (ipmi.Interface{}).PowerState(context.Background(), tk); err != nil {
		f.Fatalf("the BMC stopped answering a real client: %v", err)
	}
}

// FuzzRedfishRequests sends arbitrary bodies to the Redfish actions and PATCH: a client error
// at worst, never a crash.
func FuzzRedfishRequests(f *testing.F) {
	f.Add("POST", []byte(`{"ResetType":"Nmi"}`))
	f.Add("PATCH", []byte(`{"Boot":{"BootSourceOverrideTarget":"Pxe","BootSourceOverrideEnabled":"Once"}}`))
	f.Add("PATCH", []byte(`{"Boot":{"BootSourceOverrideTarget":7}}`))
	f.Add("POST", []byte(`{"ResetType":"Explode"}`))
	v, err := Start(Config{Username: "admin", Password: "password", RedfishListen: "127.0.0.1:0",
		Machines: []MachineConfig{{Name: "vm1", Command: []string{"sh", "-c", "exec sleep 300", "vm"}}}}, nil)
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go v.Serve(ctx)
	defer func() { cancel(); v.Close() }()
	f.Fuzz(func(t *testing.T, method string, body []byte) {
		path := "/redfish/v1/Systems/vm1"
		switch method {
		case "POST":
			path += "/Actions/ComputerSystem.Reset"
		case "PATCH":
		default:
			return
		}
		req, _ := http.NewRequest(method, v.RedfishURL+path, bytes.NewReader(body))
		req.SetBasicAuth("admin", "password")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %q: status %d", method, body, resp.StatusCode)
		}
	})
}

// TestRedfishToolAgainstTheRedfishService uses DMTF's redfishtool (Debian's redfishtool) as a
// second independent Redfish client.
func TestRedfishToolAgainstTheRedfishService(t *testing.T) {
	need(t, "redfishtool", "redfishtool")
	v := startVBMC(t, []string{"sh", "-c", "exec sleep 300", "vm"})
	host := strings.TrimPrefix(v.RedfishURL, "http://")
	run := func(args ...string) string {
		t.Helper()
		base := []string{"-r", host, "-u", "admin", "-p", "password", "-S", "Never", "-A", "Basic"}
		out, err := exec.Command("redfishtool", append(base, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("redfishtool %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := run("Systems", "-I", "vm1"); !strings.Contains(out, `"PowerState": "Off"`) {
		t.Fatalf("system as redfishtool sees it:\n%s", out)
	}
	run("Systems", "-I", "vm1", "setBootOverride", "Once", "Pxe")
	if dev, persistent := v.Machine("vm1").Boot(); dev != BootPXE || persistent {
		t.Fatalf("after setBootOverride Once Pxe: %s %v", dev, persistent)
	}
	run("Systems", "-I", "vm1", "reset", "On")
	if !v.Machine("vm1").On() {
		t.Fatal("redfishtool reset On did not start the machine")
	}
	run("Systems", "-I", "vm1", "reset", "ForceOff")
	if v.Machine("vm1").On() {
		t.Fatal("redfishtool reset ForceOff did not stop the machine")
	}
}

// TestIPMISessionReuse checks that a session cache keeps one RMCP+ session per BMC between
// operations, and recovers when the BMC forgets it (here: the BMC restarts on the same port).
func TestIPMISessionReuse(t *testing.T) {
	command := []string{"sh", "-c", "exec sleep 300", "vm"}
	v := startVBMC(t, command)
	addr := v.IPMIAddrs["vm1"]
	host, port, _ := strings.Cut(addr, ":")
	tk := &conductor.Task{Node: &ironwork.Node{UUID: "sessions", DriverInfo: ironwork.JSONObject{"ipmi_address": host,
		"ipmi_port": port, "ipmi_username": "admin", "ipmi_password": "password"}}}
	ctx := context.Background()
	sessions := ipmi.NewSessions()
	defer sessions.Close()
	cached := ipmi.Interface{Sessions: sessions, CommandTimeout: 500 * time.Millisecond, Retries: 1}
	fresh := ipmi.Interface{CommandTimeout: 500 * time.Millisecond, Retries: 1}
	for name, d := range map[string]ipmi.Interface{"cached": cached, "fresh": fresh} {
		start := time.Now()
		for range 50 {
			if st, err := d.PowerState(ctx, tk); err != nil || st != ironwork.PowerOff {
				t.Fatalf("%s: %q %v", name, st, err)
			}
		}
		t.Logf("50 power-state reads with %s sessions: %s", name, time.Since(start).Round(time.Millisecond))
	}

	// The BMC restarts: its sessions are gone, the cached one fails once and is replaced.
	v.Close()
	v2, err := Start(Config{Username: "admin", Password: "password",
		Machines: []MachineConfig{{Name: "vm1", IPMIListen: addr, Command: command}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel := context.WithCancel(ctx)
	go v2.Serve(ctx2)
	defer func() { cancel(); v2.Close() }()
	if err := cached.SetPowerState(ctx, tk, ironwork.PowerOn, 5*time.Second); err != nil {
		t.Fatalf("after the BMC restarted: %v", err)
	}
	if !v2.Machine("vm1").On() {
		t.Fatal("the restarted BMC did not power the machine on")
	}
}

// TestSerialOverLAN attaches Ironwork's IPMI console seam to a machine whose serial line is a
// unix socket (played here by the test, as QEMU would serve it): bytes flow both ways.
func TestSerialOverLAN(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "serial.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte("node-1 login: "))
		// SOL carries keystrokes a few at a time: gather them up to the carriage return.
		var line []byte
		buf := make([]byte, 64)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for !bytes.Contains(line, []byte("\r")) {
			n, err := c.Read(buf)
			line = append(line, buf[:n]...)
			if err != nil {
				break
			}
		}
		got <- string(line)
		time.Sleep(time.Second)
	}()
	v, err := Start(Config{Username: "admin", Password: "password", Machines: []MachineConfig{{Name: "vm1",
		IPMIListen: "127.0.0.1:0", Command: []string{"sh", "-c", "exec sleep 300", "vm"}, SerialSocket: sock}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go v.Serve(ctx)
	defer func() { cancel(); v.Close() }()

	host, port, _ := strings.Cut(v.IPMIAddrs["vm1"], ":")
	tk := &conductor.Task{Node: &ironwork.Node{UUID: "sol", DriverInfo: ironwork.JSONObject{"ipmi_address": host,
		"ipmi_port": port, "ipmi_username": "admin", "ipmi_password": "password"}}}
	in, typed := io.Pipe()
	var out lockedbuf.Buffer
	solCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- (ipmi.Interface{}).AttachConsole(solCtx, tk, in, &out) }()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "login:") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "node-1 login: ") {
		t.Fatalf("console output: %q", out.String())
	}
	typed.Write([]byte("root\r"))
	select {
	case s := <-got:
		if s != "root\r" {
			t.Fatalf("the serial line received %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("typed input never reached the serial line")
	}
	stop()
	typed.Close()
	if err := <-done; err != nil {
		t.Fatalf("console ended with %v", err)
	}
}
