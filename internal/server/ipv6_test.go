package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/lockedbuf"
	"github.com/ironwork/ironwork/internal/netns"
	"github.com/ironwork/ironwork/internal/netns/netnstest"
	"github.com/ironwork/ironwork/internal/server"
)

func TestDHCP6ConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    server.DHCP6Config
		want string // "" = valid
	}{
		{"stateful", server.DHCP6Config{Mode: "stateful", Prefix: "fd00:1::/64", Range: "fd00:1::100,fd00:1::1ff", DNS: "fd00:1::53"}, ""},
		{"stateless", server.DHCP6Config{Mode: "stateless", Prefix: "fd00:1::/64"}, ""},
		{"off", server.DHCP6Config{Mode: "off", Prefix: "nonsense"}, ""},
		{"stateful needs range", server.DHCP6Config{Mode: "stateful", Prefix: "fd00:1::/64"}, "needs dhcp6.range"},
		{"range outside prefix", server.DHCP6Config{Mode: "stateful", Prefix: "fd00:1::/64", Range: "fd00:2::1,fd00:2::9"}, "not inside the prefix"},
		{"range not IPv6", server.DHCP6Config{Mode: "stateful", Prefix: "fd00:1::/64", Range: "10.0.0.1"}, "two IPv6 addresses"},
		{"stateless with range", server.DHCP6Config{Mode: "stateless", Prefix: "fd00:1::/64", Range: "fd00:1::1,fd00:1::9"}, "stateless mode hands out no addresses"},
		{"bad prefix", server.DHCP6Config{Mode: "stateless", Prefix: "fd00:1::"}, "dhcp6.prefix"},
		{"bad dns", server.DHCP6Config{Mode: "stateless", Prefix: "fd00:1::/64", DNS: "10.0.0.53"}, "dhcp6.dns"},
		{"bad mode", server.DHCP6Config{Mode: "slaac", Prefix: "fd00:1::/64"}, "DHCPv6 mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := server.Default()
			c.ProvisioningInterface = "eth1"
			c.DHCP6 = tc.d
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
	c := server.Default()
	c.DHCP6 = server.DHCP6Config{Mode: "stateless", Prefix: "fd00:1::/64"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "dhcp6 needs provisioning_interface") {
		t.Fatalf("dhcp6 without an interface: %v", err)
	}
}

// TestIPv6OnlyProvisioning runs the boot services on a provisioning network that has only
// IPv6 (a bridge with fd99::1/64 in a namespace) and a host on it (a veth in a second
// namespace) that runs ISC dhclient -6 as iPXE would: user class "iPXE". The host gets an
// address from the stateful range, its node's iPXE script URL (option 59) with the
// server's IPv6 literal in brackets, and then fetches the script, whose kernel, ramdisk and
// ipa-api-url are IPv6 URLs it can fetch and reach.
func TestIPv6OnlyProvisioning(t *testing.T) {
	netnstest.Need(t)
	if _, err := exec.LookPath("dhclient"); err != nil {
		t.Skip("needs ISC dhclient (Debian package isc-dhcp-client)")
	}
	ns := netnstest.New(t, "iw6s")
	cns := netnstest.New(t, "iw6c")
	netnstest.Bridge(t, ns, "br0", "", "fd99::1/64")
	netnstest.IP(t, "link", "add", "v6c", "netns", cns, "type", "veth", "peer", "name", "v6p", "netns", ns)
	netnstest.IP(t, "-n", ns, "link", "set", "v6p", "master", "br0", "up")
	if out, err := exec.Command("ip", "netns", "exec", cns, "sysctl", "-qw", "net.ipv6.conf.v6c.accept_dad=0").CombinedOutput(); err != nil {
		t.Fatalf("sysctl: %v %s", err, out)
	}
	netnstest.IP(t, "-n", cns, "link", "set", "v6c", "address", "52:54:00:99:00:06", "up")
	const mac = "52:54:00:99:00:06"

	work := t.TempDir()
	kernel, initrd := filepath.Join(work, "kernel"), filepath.Join(work, "ramdisk")
	for _, f := range []string{kernel, initrd} {
		if err := os.WriteFile(f, []byte("boot file "+filepath.Base(f)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	logs := &lockedbuf.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- server log ---\n%s", logs.String())
		}
	})
	srv := startBootServer(t, logs, func(c *server.Config) {
		c.ProvisioningNetns, c.ProvisioningInterface = ns, "br0"
		c.DHCP6 = server.DHCP6Config{Mode: "stateful", Prefix: "fd99::/64", Range: "fd99::100,fd99::1ff", DNS: "fd99::53"}
		c.FileURLAllowedPaths = []string{work}
	})
	cl := &api.Client{BaseURL: srv.URL(), Version: "1.87"}
	ctx := context.Background()
	var node map[string]any
	if err := cl.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "v6only", "driver": "fake-hardware",
		"boot_interface": "ipxe", "driver_info": map[string]any{"deploy_kernel": kernel, "deploy_ramdisk": initrd}}, &node); err != nil {
		t.Fatal(err)
	}
	uuid := node["uuid"].(string)
	if err := cl.Do(ctx, http.MethodPost, "/v1/ports", map[string]any{"node_uuid": uuid, "address": mac, "pxe_enabled": true}, nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.Conductor().WithNode(ctx, uuid, func(tk *conductor.Task) error {
		return tk.Driver.Impl(ironwork.BootInterface).(conductor.Boot).PrepareRamdisk(ctx, tk)
	}); err != nil {
		t.Fatalf("prepare ramdisk: %v", err)
	}

	start := time.Now()
	conf := "timeout 30;\noption dhcp6.uclass code 15 = {integer 16, string};\noption dhcp6.boot-url code 59 = string;\n" +
		"also request dhcp6.boot-url;\nsend dhcp6.uclass 4 \"iPXE\";\n"
	got := runDhclient6(t, cns, "v6c", conf)
	t.Logf("dhclient -6 configured in %.1f s", time.Since(start).Seconds())
	m := regexp.MustCompile(`iaaddr (fd99::1[0-9a-f]{2}) `).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("no address from the range in the lease:\n%s", got)
	}
	if l6, ok, err := srv.Store().Lease6ByIP(ctx, m[1]); err != nil || !ok || l6.MAC != mac {
		t.Fatalf("lease of %s in the store: %+v %v %v", m[1], l6, ok, err)
	}
	// What dhclient-script would do with the lease (the test runs dhclient without it).
	netnstest.IP(t, "-n", cns, "addr", "add", m[1]+"/64", "dev", "v6c", "nodad")
	scriptURL := regexp.MustCompile(`http://\[fd99::1\]:[0-9]+/boot/[0-9a-f:]+\.ipxe`).FindString(got)
	if want := "/boot/" + mac + ".ipxe"; !strings.HasSuffix(scriptURL, want) {
		t.Fatalf("boot file URL %q (want ...%s) in:\n%s", scriptURL, want, got)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: netns.Dialer(cns)}}
	fetch := func(u string) string {
		t.Helper()
		resp, err := hc.Get(u)
		if err != nil {
			t.Fatalf("GET %s from the IPv6-only host: %v", u, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s: %s", u, resp.Status, b)
		}
		return string(b)
	}
	script := fetch(scriptURL)
	_, apiPort, _ := net.SplitHostPort(srv.Addr())
	agentAPI := "http://[fd99::1]:" + apiPort
	if !strings.Contains(script, "ipa-api-url="+agentAPI) {
		t.Errorf("script lacks ipa-api-url=%s:\n%s", agentAPI, script)
	}
	urls := regexp.MustCompile(`http://\S+/nodes/`+uuid+`/(kernel|ramdisk)`).FindAllString(script, -1)
	seen := map[string]bool{}
	for _, u := range urls {
		seen[u] = true
	}
	if len(seen) != 2 {
		t.Fatalf("script names %d boot file URLs, want kernel and ramdisk:\n%s", len(seen), script)
	}
	for u := range seen {
		if !strings.HasPrefix(u, "http://[fd99::1]:") {
			t.Errorf("boot file URL %s is not the server's bracketed IPv6 literal", u)
		}
		if body := fetch(u); !strings.HasPrefix(body, "boot file ") {
			t.Errorf("GET %s: %q", u, body)
		}
	}
	// The agent's endpoints answer on the IPv6 address, the rest of the API does not.
	agent := &api.Client{BaseURL: agentAPI, Version: "1.87", HTTP: hc}
	var lr api.LookupResponse
	if err := agent.Do(ctx, http.MethodGet, "/v1/lookup?addresses=52:54:00:99:00:07", nil, &lr); !api.IsStatus(err, http.StatusNotFound) {
		t.Fatalf("lookup over IPv6: %v, want 404 (no node)", err)
	}
	if err := agent.Do(ctx, http.MethodGet, "/v1/nodes", nil, nil); !api.IsStatus(err, http.StatusForbidden) {
		t.Fatalf("node list over IPv6: %v, want 403", err)
	}
	if log := logs.String(); !strings.Contains(log, "dhcpv6 serving") || !strings.Contains(log, "router advertiser") {
		t.Errorf("server log lacks the DHCPv6 server or the router advertiser")
	}
}

// runDhclient6 runs ISC dhclient -6 in ns on ifname until its lease file holds an address
// (at most 30 s) and returns the lease file.
func runDhclient6(t *testing.T, ns, ifname, conf string) string {
	t.Helper()
	dir := t.TempDir()
	lf, cf := filepath.Join(dir, "leases"), filepath.Join(dir, "dhclient.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "dhclient", "-6", "-d", "-v", "-cf", cf, "-lf", lf,
		"-pf", filepath.Join(dir, "pid"), "-sf", "/bin/true", ifname)
	var out lockedbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	for range 300 {
		if b, _ := os.ReadFile(lf); strings.Contains(string(b), "iaaddr") {
			return string(b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(lf)
	t.Fatalf("dhclient -6 got no address in 30 s:\n%s\nlease file:\n%s", out.String(), b)
	return ""
}
