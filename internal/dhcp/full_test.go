package dhcp

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// mapNodes is the conductor's side of the lookup for tests: a fixed table.
type mapNodes map[string]Client

func (m mapNodes) Lookup(_ context.Context, mac net.HardwareAddr) (Client, error) {
	return m[mac.String()], nil
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// udhcpc runs busybox udhcpc once in ns on ifname and returns the variables
// its script saw on "bound", or an error if it got no lease (3 tries, 1 s
// apart).
func udhcpc(t *testing.T, ns, ifname string, extra ...string) (map[string]string, error) {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "bound.env")
	script := filepath.Join(dir, "script.sh")
	body := "#!/bin/sh\ncase \"$1\" in bound|renew) env > " + out + " ;; esac\nexit 0\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := append([]string{"netns", "exec", ns, "busybox", "udhcpc", "-i", ifname, "-f", "-n", "-q",
		"-t", "3", "-T", "1", "-s", script}, extra...)
	cmdOut, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("udhcpc %v: %w\n%s", extra, err, cmdOut)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("udhcpc wrote no lease: %w\n%s", err, cmdOut)
	}
	return parseEnv(b), nil
}

// dhclient runs ISC dhclient in ns on ifname until its script sees BOUND
// (at most 15 s), then stops it, and returns the script's variables.
func dhclient(t *testing.T, ns, ifname, extraConf string) (map[string]string, error) {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "bound.env")
	script := filepath.Join(dir, "script.sh")
	body := "#!/bin/sh\ncase \"$reason\" in BOUND|REBOOT) env > " + out + ".tmp && mv " + out + ".tmp " + out + " ;; esac\nexit 0\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "dhclient.conf")
	if err := os.WriteFile(conf, []byte("timeout 15;\nretry 1;\ninitial-interval 1;\nrequest subnet-mask, routers, domain-name-servers, bootfile-name, tftp-server-name;\n"+extraConf), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "dhclient", "-4", "-d", "-1",
		"-sf", script, "-lf", filepath.Join(dir, "leases"), "-pf", filepath.Join(dir, "pid"), "-cf", conf, ifname)
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start dhclient: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-done
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			done <- err
			return nil, fmt.Errorf("dhclient exited without a lease: %v\n%s", err, log.String())
		case <-ctx.Done():
			return nil, fmt.Errorf("dhclient: no lease in time\n%s", log.String())
		case <-tick.C:
			if b, err := os.ReadFile(out); err == nil {
				return parseEnv(b), nil
			}
		}
	}
}

// PXE identities as udhcpc options.
var (
	pxeBIOS  = []string{"-V", "PXEClient:Arch:00000:UNDI:002001", "-x", "0x5d:0000"}
	pxeEFI   = []string{"-V", "PXEClient:Arch:00007:UNDI:003016", "-x", "0x5d:0007"}
	httpEFI  = []string{"-V", "HTTPClient:Arch:00016:UNDI:003001", "-x", "0x5d:0010"}
	pxeARM64 = []string{"-V", "PXEClient:Arch:00011:UNDI:003000", "-x", "0x5d:000b"}
	httpARM  = []string{"-V", "HTTPClient:Arch:00019:UNDI:003000", "-x", "0x5d:0013"}
	ipxeUser = []string{"-V", "PXEClient:Arch:00007:UNDI:003010", "-x", "0x5d:0007", "-x", "0x4d:69505845"} // user class "iPXE"
)

func TestFullModeRealClients(t *testing.T) {
	requireRoot(t, "busybox", "dhclient")
	tn := newTestNet(t)
	var (
		macA       = mustMAC("52:54:00:aa:00:01")
		macB       = mustMAC("52:54:00:aa:00:02")
		macC       = mustMAC("52:54:00:aa:00:03")
		macStatic  = mustMAC("52:54:00:aa:00:50")
		macNoBoot  = mustMAC("52:54:00:aa:00:60")
		macTenant  = mustMAC("52:54:00:aa:00:70")
		macTenantS = mustMAC("52:54:00:aa:00:71")
		macUnknown = mustMAC("52:54:00:ff:ff:ff")
	)
	nodes := mapNodes{
		macA.String():      {Known: true, NetBoot: true, Node: "node-a"},
		macB.String():      {Known: true, NetBoot: true, Node: "node-b"},
		macC.String():      {Known: true, NetBoot: true, Node: "node-c"},
		macStatic.String(): {Known: true, NetBoot: true, Node: "node-s", StaticIP: tn.ip(50)},
		macNoBoot.String(): {Known: true, NetBoot: false, Node: "node-n"},
		// Deployed instances on their tenant VIFs: no network-boot record, an address only.
		macTenant.String():  {Known: true, NetBoot: false, Node: "node-t", TenantVIF: "vif-t"},
		macTenantS.String(): {Known: true, NetBoot: false, Node: "node-u", TenantVIF: "vif-u", StaticIP: tn.ip(60)},
		"52:54:00:aa:00:04": {Known: true},
	}
	boot := "http://" + tn.ip(1).String() + ":8080"
	cfg := Config{
		Mode: ModeFull, Interface: tn.serverIf,
		RangeStart: tn.ip(100), RangeEnd: tn.ip(150),
		Router: tn.ip(1), DNS: []net.IP{tn.ip(1)}, LeaseTime: 10 * time.Minute,
		HTTPBootURL: boot,
	}
	var hookMu sync.Mutex
	requests := map[string]int{} // "DISCOVER true": answered DISCOVERs
	cfg.OnRequest = func(msgType string, answered bool) {
		hookMu.Lock()
		requests[fmt.Sprintf("%s %v", msgType, answered)]++
		hookMu.Unlock()
	}
	leases := NewMemoryLeases()
	_, stop := startServer(t, tn.serverNS, cfg, nodes, leases)

	type want struct {
		ip, bootfile string // bootfile "" means: no boot file at all
	}
	check := func(t *testing.T, env map[string]string, w want) {
		t.Helper()
		if env["ip"] != w.ip {
			t.Errorf("ip = %q, want %q", env["ip"], w.ip)
		}
		if env["serverid"] != tn.ip(1).String() {
			t.Errorf("serverid = %q, want %v", env["serverid"], tn.ip(1))
		}
		if env["subnet"] != "255.255.255.0" || env["router"] != tn.ip(1).String() || env["dns"] != tn.ip(1).String() {
			t.Errorf("subnet/router/dns = %q/%q/%q", env["subnet"], env["router"], env["dns"])
		}
		if env["bootfile"] != w.bootfile || env["boot_file"] != w.bootfile {
			t.Errorf("bootfile (opt 67) = %q, boot_file (file field) = %q, want %q", env["bootfile"], env["boot_file"], w.bootfile)
		}
		if w.bootfile != "" && (env["siaddr"] != tn.ip(1).String() || env["tftp"] != tn.ip(1).String()) {
			t.Errorf("siaddr = %q, tftp (opt 66) = %q, want %v", env["siaddr"], env["tftp"], tn.ip(1))
		}
		if w.bootfile == "" && (env["tftp"] != "" || env["bootfile"] != "") {
			t.Errorf("boot options given to a client that must not net-boot: tftp=%q bootfile=%q", env["tftp"], env["bootfile"])
		}
	}
	steps := []struct {
		name string
		mac  net.HardwareAddr
		args []string
		want want
	}{
		{"bios", macB, pxeBIOS, want{tn.ip(100).String(), "undionly.kpxe"}},
		{"uefi", macA, pxeEFI, want{tn.ip(101).String(), "snponly.efi"}},
		{"uefi-http", macA, httpEFI, want{tn.ip(101).String(), boot + "/ipxe.efi"}},
		{"arm64-uefi", macA, pxeARM64, want{tn.ip(101).String(), "grubnetaa64.efi"}},
		{"arm64-uefi-http", macA, httpARM, want{tn.ip(101).String(), boot + "/grubnetaa64.efi"}},
		{"ipxe", macA, ipxeUser, want{tn.ip(101).String(), boot + "/boot/" + macA.String() + ".ipxe"}},
		{"static", macStatic, pxeBIOS, want{tn.ip(50).String(), "undionly.kpxe"}},
		{"known-not-netboot", macNoBoot, pxeEFI, want{tn.ip(102).String(), ""}},
		{"not-pxe", macC, nil, want{tn.ip(103).String(), ""}},
		{"tenant-vif", macTenant, nil, want{tn.ip(104).String(), ""}},
		{"tenant-vif-sticky", macTenant, nil, want{tn.ip(104).String(), ""}},
		{"tenant-vif-pxe-rom", macTenant, pxeEFI, want{tn.ip(104).String(), ""}},
		{"tenant-vif-static", macTenantS, nil, want{tn.ip(60).String(), ""}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			setMAC(t, tn.clientNS, tn.clientIf, st.mac)
			env, err := udhcpc(t, tn.clientNS, tn.clientIf, st.args...)
			if err != nil {
				t.Fatal(err)
			}
			check(t, env, st.want)
			wantVendor := ""
			if strings.HasSuffix(st.name, "-http") {
				wantVendor = "HTTPClient"
			}
			if env["vendor"] != wantVendor {
				t.Errorf("option 60 = %q, want %q", env["vendor"], wantVendor)
			}
			if env["opt175"] != "b00101" {
				t.Errorf("option 175 = %q, want b00101 (iPXE no-pxedhcp = 1)", env["opt175"])
			}
		})
	}
	t.Run("unknown-ignored", func(t *testing.T) {
		setMAC(t, tn.clientNS, tn.clientIf, macUnknown)
		if env, err := udhcpc(t, tn.clientNS, tn.clientIf, pxeBIOS...); err == nil {
			t.Fatalf("unknown MAC got a lease: %v", env)
		}
		if _, found, _ := leases.Lease(context.Background(), fmt.Sprintf("10.77.%d.0/24", tn.n), macUnknown); found {
			t.Error("unknown MAC has a lease")
		}
	})
	t.Run("dhclient", func(t *testing.T) {
		setMAC(t, tn.clientNS, tn.clientIf, macA)
		env, err := dhclient(t, tn.clientNS, tn.clientIf, `option pxe-arch code 93 = unsigned integer 16;
send pxe-arch 0;
send vendor-class-identifier "PXEClient:Arch:00000:UNDI:002001";
`)
		if err != nil {
			t.Fatal(err)
		}
		if env["new_ip_address"] != tn.ip(101).String() || env["new_subnet_mask"] != "255.255.255.0" ||
			env["new_dhcp_server_identifier"] != tn.ip(1).String() || env["new_routers"] != tn.ip(1).String() {
			t.Errorf("dhclient lease: ip %q mask %q server %q router %q", env["new_ip_address"], env["new_subnet_mask"],
				env["new_dhcp_server_identifier"], env["new_routers"])
		}
		if env["new_filename"] != "undionly.kpxe" || env["new_next_server"] != tn.ip(1).String() {
			t.Errorf("dhclient boot: file %q next-server %q, want undionly.kpxe from %v", env["new_filename"], env["new_next_server"], tn.ip(1))
		}
		if env["new_dhcp_lease_time"] != "600" {
			t.Errorf("lease time = %q, want 600", env["new_dhcp_lease_time"])
		}
	})

	// A new server on the same lease store: MAC A asks first and still gets
	// .101, not the lowest free address; a new MAC gets the next free one.
	stop()
	// The hook saw the clients' requests: answered DISCOVERs and REQUESTs, and the unknown
	// MAC's DISCOVERs unanswered.
	hookMu.Lock()
	if requests["DISCOVER true"] < len(steps) || requests["REQUEST true"] < len(steps) || requests["DISCOVER false"] < 1 {
		t.Errorf("OnRequest saw %v", requests)
	}
	t.Logf("OnRequest: %v", requests)
	hookMu.Unlock()
	_, stop = startServer(t, tn.serverNS, cfg, nodes, leases)
	t.Run("restart-keeps-address", func(t *testing.T) {
		setMAC(t, tn.clientNS, tn.clientIf, macA)
		env, err := udhcpc(t, tn.clientNS, tn.clientIf, pxeEFI...)
		if err != nil {
			t.Fatal(err)
		}
		check(t, env, want{tn.ip(101).String(), "snponly.efi"})
		setMAC(t, tn.clientNS, tn.clientIf, mustMAC("52:54:00:aa:00:04"))
		env, err = udhcpc(t, tn.clientNS, tn.clientIf)
		if err != nil {
			t.Fatal(err)
		}
		if env["ip"] != tn.ip(105).String() {
			t.Errorf("new MAC after restart got %q, want %v (the first address no MAC holds)", env["ip"], tn.ip(105))
		}
	})
	stop()
	t.Run("discovery-serves-unknown", func(t *testing.T) {
		dcfg := cfg
		dcfg.Discovery = true
		_, stop := startServer(t, tn.serverNS, dcfg, nodes, leases)
		defer stop()
		setMAC(t, tn.clientNS, tn.clientIf, macUnknown)
		env, err := udhcpc(t, tn.clientNS, tn.clientIf, ipxeUser...)
		if err != nil {
			t.Fatal(err)
		}
		check(t, env, want{tn.ip(106).String(), boot + "/boot/unknown.ipxe"})
	})
	ls, _ := leases.Leases(context.Background())
	for _, l := range ls {
		t.Logf("lease %v %v until %v", l.MAC, l.IP, l.Expires.Format(time.TimeOnly))
	}
}
