package lab_test

import (
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
	"testing"
	"time"

	"github.com/ironwork/ironwork/internal/lab"
	"github.com/ironwork/ironwork/internal/ramdisk"
)

// TestInspectionInQEMU boots the deploy ramdisk on a QEMU machine (TCG) of the shape the issue
// names: 2 vCPUs, 1536 MiB, disks of 8 and 4 GiB, two NICs. The kernel command line carries
// ipa-inspection-callback-url, pointing at an HTTP server of this test on the host's loopback
// (each NIC is on its own QEMU user network, whose DHCP answers and whose 10.0.2.2 is the
// host). The agent must post an inventory with exactly that hardware, then power the machine
// off, which ends QEMU. With OpenIPMI's ipmi_sim installed, the machine also has a BMC (QEMU's
// ipmi-bmc-extern on a KCS interface, ipmi_sim behind it, its LAN address set to 10.11.12.13
// with ipmitool) and bmc_address must be that address, read through the guest's /dev/ipmi0.
// It needs no root. Each phase's time is logged.
func TestInspectionInQEMU(tt *testing.T) {
	t := newLabT(tt)
	if testing.Short() {
		t.Skip("boots a VM")
	}
	kernel := lab.FindKernel()
	if kernel == "" {
		t.Skip("no kernel for the ramdisk: run scripts/kernel.sh")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 not installed: run scripts/deps.sh")
	}
	t.Parallel() // beside a lab: it needs no namespace
	start := time.Now()
	dir := t.TempDir()
	_, agentBin := labBinaries(t)
	bmcArgs, bmcAddr := startVMBMC(t, dir)
	modules := ramdisk.DefaultModules()
	if bmcArgs != nil {
		modules = append(modules, "ipmi_si", "ipmi_devintf")
	}
	rd, err := ramdisk.Build(context.Background(), ramdisk.BuildConfig{KernelDir: kernel, Agent: agentBin,
		Output: filepath.Join(dir, "ramdisk"), Modules: modules})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("agent and ramdisk built: %.1f s", time.Since(start).Seconds())

	sizes := []int64{8 << 30, 4 << 30}
	var disks []string
	for i, size := range sizes {
		p := filepath.Join(dir, fmt.Sprintf("disk%d.raw", i))
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
		disks = append(disks, p)
	}
	macs := []string{"52:54:00:1e:00:01", "52:54:00:1e:00:02"}

	type post struct {
		at   time.Time
		body map[string]any
	}
	posts := make(chan post, 4)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if r.Method != http.MethodPost || r.URL.Path != "/v1/continue_inspection" ||
			json.NewDecoder(io.LimitReader(r.Body, 4<<20)).Decode(&body) != nil {
			http.Error(w, `{"error_message": "bad request"}`, http.StatusBadRequest)
			return
		}
		select {
		case posts <- post{time.Now(), body}:
		default:
		}
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(map[string]any{"uuid": "e1c6f5d2-3b4a-4c5d-8e9f-0a1b2c3d4e5f"})
	}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	serial := filepath.Join(dir, "serial.log")
	args := []string{"-accel", "tcg", "-smp", "2", "-m", "1536", "-display", "none", "-nodefaults", "-no-reboot",
		"-serial", "file:" + serial, "-device", "virtio-rng-pci",
		"-kernel", rd.KernelPath, "-initrd", rd.InitramfsPath,
		"-append", fmt.Sprintf("console=ttyS0 panic=-1 BOOTIF=01-%s ipa-inspection-callback-url=http://10.0.2.2:%d/v1/continue_inspection ipa-lldp-timeout=2",
			strings.ReplaceAll(macs[0], ":", "-"), port)}
	args = append(args, bmcArgs...)
	for i, d := range disks {
		args = append(args, "-drive", "file="+d+",if=virtio,format=raw")
		args = append(args, "-netdev", fmt.Sprintf("user,id=n%d", i), "-device", fmt.Sprintf("virtio-net-pci,netdev=n%d,mac=%s,romfile=", i, macs[i]))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	qemu := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	var qout strings.Builder
	qemu.Stdout, qemu.Stderr = &qout, &qout
	boot := time.Now()
	if err := qemu.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var once sync.Once
	go func() { exited <- qemu.Wait() }()
	defer once.Do(func() { qemu.Process.Kill(); <-exited })
	logSerial := func() {
		b, _ := os.ReadFile(serial)
		t.Logf("--- serial (tail) ---\n%s\n--- qemu ---\n%s", tailLines(b, 60), qout.String())
	}

	var got post
	select {
	case got = <-posts:
	case err := <-exited:
		once.Do(func() {})
		logSerial()
		t.Fatalf("QEMU ended (%v) before the agent posted its inventory", err)
	case <-ctx.Done():
		logSerial()
		t.Fatal("no inventory within 10 minutes")
	}
	t.Logf("boot to inventory posted: %.1f s", got.at.Sub(boot).Seconds())
	select {
	case err := <-exited:
		once.Do(func() {})
		t.Logf("inventory posted to power off (QEMU exit): %.1f s (QEMU: %v)", time.Since(got.at).Seconds(), err)
	case <-time.After(2 * time.Minute):
		logSerial()
		t.Error("the machine did not power off within 2 minutes of posting")
	}

	b, _ := json.Marshal(got.body)
	var data struct {
		Inventory struct {
			CPU struct {
				Count        int    `json:"count"`
				Architecture string `json:"architecture"`
			} `json:"cpu"`
			Memory struct {
				Total      int64 `json:"total"`
				PhysicalMB int64 `json:"physical_mb"`
			} `json:"memory"`
			Disks []struct {
				Name string `json:"name"`
				Size int64  `json:"size"`
			} `json:"disks"`
			Interfaces []struct {
				Name        string  `json:"name"`
				MACAddress  string  `json:"mac_address"`
				IPv4Address *string `json:"ipv4_address"`
				LLDP        []any   `json:"lldp"`
			} `json:"interfaces"`
			Boot struct {
				CurrentBootMode string `json:"current_boot_mode"`
				PXEInterface    string `json:"pxe_interface"`
			} `json:"boot"`
			SystemVendor struct {
				Manufacturer string `json:"manufacturer"`
			} `json:"system_vendor"`
			BMCAddress *string `json:"bmc_address"`
		} `json:"inventory"`
		RootDisk struct {
			Name string `json:"name"`
		} `json:"root_disk"`
		BootInterface string         `json:"boot_interface"`
		LLDPRaw       map[string]any `json:"lldp_raw"`
		Error         *string        `json:"error"`
	}
	if err := json.Unmarshal(b, &data); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	inv := data.Inventory
	t.Logf("inventory: %d CPUs %s, memory total %d B physical %d MiB, disks %+v, interfaces %+v, boot %+v, vendor %q",
		inv.CPU.Count, inv.CPU.Architecture, inv.Memory.Total, inv.Memory.PhysicalMB, inv.Disks, inv.Interfaces, inv.Boot, inv.SystemVendor.Manufacturer)
	if inv.CPU.Count != 2 || inv.CPU.Architecture != "x86_64" {
		t.Errorf("cpu: %d %s, want 2 x86_64", inv.CPU.Count, inv.CPU.Architecture)
	}
	// physical_mb: the online memory blocks (128 MiB each); total: what the kernel manages.
	if inv.Memory.PhysicalMB != 1536 || inv.Memory.Total <= 1200<<20 || inv.Memory.Total > 1536<<20 {
		t.Errorf("memory: physical %d MiB (want 1536), total %d bytes", inv.Memory.PhysicalMB, inv.Memory.Total)
	}
	if len(inv.Disks) != 2 || inv.Disks[0].Name != "/dev/vda" || inv.Disks[0].Size != sizes[0] || inv.Disks[1].Name != "/dev/vdb" || inv.Disks[1].Size != sizes[1] {
		t.Errorf("disks: %+v, want vda %d and vdb %d bytes", inv.Disks, sizes[0], sizes[1])
	}
	gotMACs := map[string]bool{}
	for _, n := range inv.Interfaces {
		gotMACs[n.MACAddress] = true
		if n.IPv4Address == nil || !strings.HasPrefix(*n.IPv4Address, "10.0.2.") || n.LLDP == nil {
			t.Errorf("interface %s: IPv4 %v (want a 10.0.2.x lease), lldp %v (want [], listened)", n.Name, n.IPv4Address, n.LLDP)
		}
	}
	if len(inv.Interfaces) != 2 || !gotMACs[macs[0]] || !gotMACs[macs[1]] {
		t.Errorf("interfaces: %+v, want MACs %v", inv.Interfaces, macs)
	}
	if inv.Boot.CurrentBootMode != "bios" || inv.Boot.PXEInterface != macs[0] || data.BootInterface != macs[0] {
		t.Errorf("boot: %+v, boot_interface %q", inv.Boot, data.BootInterface)
	}
	if data.RootDisk.Name != "/dev/vdb" || len(data.LLDPRaw) != 2 || inv.SystemVendor.Manufacturer != "QEMU" {
		t.Errorf("root_disk %q (want the smallest ≥ 4 GiB, vdb), lldp_raw %v, manufacturer %q", data.RootDisk.Name, data.LLDPRaw, inv.SystemVendor.Manufacturer)
	}
	switch {
	case bmcAddr == "" && inv.BMCAddress != nil:
		t.Errorf("bmc_address %q on a machine without a BMC", *inv.BMCAddress)
	case bmcAddr != "" && (inv.BMCAddress == nil || *inv.BMCAddress != bmcAddr):
		t.Errorf("bmc_address %v, want %s (read through /dev/ipmi0 from ipmi_sim)", inv.BMCAddress, bmcAddr)
	case bmcAddr != "":
		t.Logf("bmc_address %s read through the guest's /dev/ipmi0", *inv.BMCAddress)
	}
	if data.Error != nil {
		t.Errorf("the agent reported an error (e.g. LLDP sockets): %s", *data.Error)
	}
	if t.Failed() {
		logSerial()
		t.recap()
	}
}

// startVMBMC runs OpenIPMI's ipmi_sim as a BMC the VM reaches through QEMU's ipmi-bmc-extern
// (a KCS system interface), with LAN channel 1 on loopback where ipmitool sets its IPv4
// address. It returns QEMU's arguments and that address, or nothing when ipmi_sim or ipmitool
// is missing (the test then checks bmc_address is null).
func startVMBMC(t testing.TB, dir string) ([]string, string) {
	for _, tool := range []string{"ipmi_sim", "ipmitool"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Logf("%s not installed (Debian: openipmi ipmitool): the VM gets no BMC", tool)
			return nil, ""
		}
	}
	free := func(network string) int {
		if network == "udp" {
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			return pc.LocalAddr().(*net.UDPAddr).Port
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
	lanPort, vmPort := free("udp"), free("tcp")
	conf := fmt.Sprintf(`name "vmbmc"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 %d
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  serial kcs 127.0.0.1 %d codec VM
  user 2 true  "admin" "password" admin 10 none md2 md5 straight
`, lanPort, vmPort)
	emu := "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n"
	bdir := filepath.Join(dir, "bmc")
	if err := os.MkdirAll(filepath.Join(bdir, "state"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(bdir, "lan.conf"), []byte(conf), 0o644)
	os.WriteFile(filepath.Join(bdir, "cmd.emu"), []byte(emu), 0o644)
	logf, err := os.Create(filepath.Join(bdir, "ipmi_sim.log"))
	if err != nil {
		t.Fatal(err)
	}
	sim := exec.Command("ipmi_sim", "-c", filepath.Join(bdir, "lan.conf"), "-f", filepath.Join(bdir, "cmd.emu"), "-s", filepath.Join(bdir, "state"), "-n")
	sim.Stdout, sim.Stderr = logf, logf
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Process.Kill(); sim.Wait(); logf.Close() })
	const addr = "10.11.12.13"
	ipmitool := []string{"-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", fmt.Sprint(lanPort), "-U", "admin", "-P", "password"}
	var out []byte
	for range 50 { // ≤ 10 s for ipmi_sim to listen
		if out, err = exec.Command("ipmitool", append(ipmitool, "lan", "set", "1", "ipaddr", addr)...).CombinedOutput(); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("set the BMC's LAN address: %v: %s", err, out)
	}
	return []string{"-chardev", fmt.Sprintf("socket,id=ipmi0,host=127.0.0.1,port=%d,reconnect=10", vmPort),
		"-device", "ipmi-bmc-extern,chardev=ipmi0,id=bmc0", "-device", "isa-ipmi-kcs,bmc=bmc0"}, addr
}
