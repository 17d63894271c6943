package initsys

import (
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	nsrun "github.com/ironwork/ironwork/internal/netns"
	"github.com/ironwork/ironwork/internal/netns/netnstest"
)

// kernelHas says whether this kernel can make links of kind (bond, vlan) in ns.
func kernelHas(t *testing.T, ns, kind string) bool {
	args := []string{"-n", ns, "link", "add", "probe0", "type", kind}
	if kind == "vlan" {
		args = []string{"-n", ns, "link", "add", "link", "lo", "name", "probe0", "type", "vlan", "id", "2"}
	}
	if exec.Command("ip", args...).Run() != nil {
		return false
	}
	exec.Command("ip", "-n", ns, "link", "del", "probe0").Run()
	return true
}

// TestApplyNetworkPlanInANamespace applies the sample network_data (a NIC, a bond of two, a
// VLAN on the bond, static IPv4 and IPv6, routes, DNS) to veth NICs with the sample's MACs
// in a network namespace made for the test, and reads the result back with iproute2. A
// kernel without the bonding or 8021q driver (containers) gets the sample without its bond
// and VLAN, and the test says so.
func TestApplyNetworkPlanInANamespace(t *testing.T) {
	ns := netnstest.New(t, "iw-netdata")
	for name, mac := range sampleNICs {
		netnstest.IP(t, "-n", ns, "link", "add", name, "address", mac, "type", "veth", "peer", "name", "peer-"+name)
	}
	full := kernelHas(t, ns, "bond") && kernelHas(t, ns, "vlan")
	doc := sampleNetworkData
	if !full {
		t.Log("this kernel cannot make bonds or VLANs (no bonding/8021q driver): applying the sample without them")
		doc = strings.Replace(doc, `{"id": "tenant", "link": "vlan100", "type": "ipv4", "ip_address": "10.100.0.5", "netmask": "24"},
  {"id": "dhcp", "link": "bond0", "type": "ipv4_dhcp"}`, `{"id": "dhcp", "link": "eth1", "type": "ipv4_dhcp"}`, 1)
		doc = strings.Replace(doc, `,
  {"id": "bond0", "type": "bond", "bond_links": ["eth1", "eth2"], "bond_mode": "802.3ad", "ethernet_mac_address": "52:54:00:00:00:02"},
  {"id": "vlan100", "type": "vlan", "vlan_link": "bond0", "vlan_id": 100, "vlan_mac_address": "52:54:00:00:00:02"}`, "", 1)
	}
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	var names map[string]string
	err := nsrun.Do(ns, func() error {
		ifs, err := net.Interfaces()
		if err != nil {
			return err
		}
		nics := map[string]string{}
		for _, i := range ifs {
			if len(i.HardwareAddr) == 6 {
				nics[i.Name] = i.HardwareAddr.String()
			}
		}
		p, err := PlanNetwork([]byte(doc), nics)
		if err != nil {
			return err
		}
		names, err = ApplyNetworkPlan(p, resolv, slog.New(slog.DiscardHandler))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if names["eth0"] != "ens3" || (full && (names["bond0"] != "bond0" || names["vlan100"] != "bond0.100")) {
		t.Fatalf("link names: %v", names)
	}
	show := func(args ...string) string {
		out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	addrs := show("-o", "addr")
	want := []string{"ens3    inet 192.168.50.10/24", "ens3    inet6 fd00:50::10/64"}
	if full {
		want = append(want, "bond0.100    inet 10.100.0.5/24")
	}
	for _, want := range want {
		if !strings.Contains(strings.Join(strings.Fields(addrs), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("addresses lack %q:\n%s", want, addrs)
		}
	}
	if r := show("route"); !strings.Contains(r, "default via 192.168.50.1 dev ens3") {
		t.Errorf("IPv4 routes:\n%s", r)
	}
	if r := show("-6", "route"); !strings.Contains(r, "default via fd00:50::1 dev ens3") {
		t.Errorf("IPv6 routes:\n%s", r)
	}
	if !full {
		if b, _ := os.ReadFile(resolv); string(b) != "nameserver 8.8.8.8\nnameserver 192.168.50.2\n" {
			t.Errorf("resolv.conf: %q", b)
		}
		return
	}
	if l := show("-d", "link", "show", "bond0.100"); !strings.Contains(l, "vlan protocol 802.1Q id 100") {
		t.Errorf("VLAN:\n%s", l)
	}
	for _, m := range []string{"ens4", "ens5"} {
		if l := show("link", "show", m); !strings.Contains(l, "master bond0") {
			t.Errorf("%s is not in the bond:\n%s", m, l)
		}
	}
	if l := show("-d", "link", "show", "bond0"); !strings.Contains(l, "mode 802.3ad") {
		t.Errorf("bond mode:\n%s", l)
	}
	if b, _ := os.ReadFile(resolv); string(b) != "nameserver 8.8.8.8\nnameserver 192.168.50.2\n" {
		t.Errorf("resolv.conf: %q", b)
	}
}
