package initsys

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ironwork/ironwork/internal/configdrive"
)

// An Ironic-style network_data: a NIC, a bond of two, a VLAN on the bond, static IPv4 and
// IPv6 with routes, DNS at both levels.
const sampleNetworkData = `{
 "links": [
  {"id": "eth0", "type": "phy", "ethernet_mac_address": "52:54:00:00:00:01", "mtu": 1500},
  {"id": "eth1", "type": "phy", "ethernet_mac_address": "52:54:00:00:00:02"},
  {"id": "eth2", "type": "ethernet", "ethernet_mac_address": "52:54:00:00:00:03"},
  {"id": "bond0", "type": "bond", "bond_links": ["eth1", "eth2"], "bond_mode": "802.3ad", "ethernet_mac_address": "52:54:00:00:00:02"},
  {"id": "vlan100", "type": "vlan", "vlan_link": "bond0", "vlan_id": 100, "vlan_mac_address": "52:54:00:00:00:02"}
 ],
 "networks": [
  {"id": "prov", "link": "eth0", "type": "ipv4", "ip_address": "192.168.50.10", "netmask": "255.255.255.0",
   "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "192.168.50.1"}],
   "services": [{"type": "dns", "address": "192.168.50.2"}]},
  {"id": "v6", "link": "eth0", "type": "ipv6", "ip_address": "fd00:50::10/64",
   "routes": [{"network": "::", "netmask": "::", "gateway": "fd00:50::1"}]},
  {"id": "tenant", "link": "vlan100", "type": "ipv4", "ip_address": "10.100.0.5", "netmask": "24"},
  {"id": "dhcp", "link": "bond0", "type": "ipv4_dhcp"}
 ],
 "services": [{"type": "dns", "address": "8.8.8.8"}]
}`

var sampleNICs = map[string]string{"ens3": "52:54:00:00:00:01", "ens4": "52:54:00:00:00:02", "ens5": "52:54:00:00:00:03"}

func TestPlanNetwork(t *testing.T) {
	p, err := PlanNetwork([]byte(sampleNetworkData), sampleNICs)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range p.Links {
		got = append(got, l.ID+":"+l.Kind+":"+l.NIC+":"+l.Parent+":"+strings.Join(l.Members, "+"))
	}
	for _, a := range p.Addrs {
		got = append(got, "addr "+a.Link+" "+a.Addr.String())
	}
	for _, r := range p.Routes {
		got = append(got, "route "+r.Link+" "+r.Dst.String()+" via "+r.Gateway.String())
	}
	got = append(got, "dhcp "+strings.Join(p.DHCP, ","))
	for _, d := range p.DNS {
		got = append(got, "dns "+d.String())
	}
	want := []string{"eth0:phy:ens3::", "eth1:phy:ens4::", "eth2:phy:ens5::", "bond0:bond:::eth1+eth2", "vlan100:vlan::bond0:",
		"addr eth0 192.168.50.10/24", "addr eth0 fd00:50::10/64", "addr vlan100 10.100.0.5/24",
		"route eth0 0.0.0.0/0 via 192.168.50.1", "route eth0 ::/0 via fd00:50::1", "dhcp bond0",
		"dns 8.8.8.8", "dns 192.168.50.2"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPlanNetworkRefuses(t *testing.T) {
	for name, doc := range map[string]string{
		"not JSON":        `{`,
		"unknown MAC":     `{"links":[{"id":"a","type":"phy","ethernet_mac_address":"52:54:00:99:99:99"}]}`,
		"duplicate link":  `{"links":[{"id":"a","ethernet_mac_address":"52:54:00:00:00:01"},{"id":"a","ethernet_mac_address":"52:54:00:00:00:01"}]}`,
		"vlan id":         `{"links":[{"id":"a","ethernet_mac_address":"52:54:00:00:00:01"},{"id":"v","type":"vlan","vlan_link":"a","vlan_id":5000}]}`,
		"vlan parent":     `{"links":[{"id":"v","type":"vlan","vlan_link":"x","vlan_id":5}]}`,
		"bond member":     `{"links":[{"id":"b","type":"bond","bond_links":["x"]}]}`,
		"network link":    `{"networks":[{"id":"n","link":"x","type":"ipv4"}]}`,
		"family mismatch": `{"links":[{"id":"a","ethernet_mac_address":"52:54:00:00:00:01"}],"networks":[{"id":"n","link":"a","type":"ipv4","ip_address":"fd00::1/64"}]}`,
		"bad netmask":     `{"links":[{"id":"a","ethernet_mac_address":"52:54:00:00:00:01"}],"networks":[{"id":"n","link":"a","type":"ipv4","ip_address":"10.0.0.1","netmask":"255.0.255.0"}]}`,
		"bad gateway":     `{"links":[{"id":"a","ethernet_mac_address":"52:54:00:00:00:01"}],"networks":[{"id":"n","link":"a","type":"ipv4","ip_address":"10.0.0.1","netmask":"8","routes":[{"network":"0.0.0.0","netmask":"0","gateway":"fd00::1"}]}]}`,
		"bad dns":         `{"services":[{"type":"dns","address":"dns.example"}]}`,
		"network type":    `{"links":[{"id":"a","ethernet_mac_address":"52:54:00:00:00:01"}],"networks":[{"id":"n","link":"a","type":"ipx"}]}`,
	} {
		if _, err := PlanNetwork([]byte(doc), sampleNICs); !errors.Is(err, ErrNetworkData) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzPlanNetwork: any document gives a plan or ErrNetworkData, and a plan only names NICs
// that exist and links that were declared.
func FuzzPlanNetwork(f *testing.F) {
	f.Add([]byte(sampleNetworkData))
	f.Add([]byte(`{"links":[{"id":"a","ethernet_mac_address":"52:54:00:00:00:01"}],"networks":[{"id":"n","link":"a","type":"ipv4","ip_address":"10.0.0.1","netmask":"/8"}]}`))
	f.Add([]byte(`{"links":null,"networks":[{}],"services":[{"type":"dns"}]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := PlanNetwork(doc, sampleNICs)
		if err != nil {
			if !errors.Is(err, ErrNetworkData) {
				t.Fatalf("error not wrapping ErrNetworkData: %v", err)
			}
			return
		}
		ids := map[string]bool{}
		for _, l := range p.Links {
			ids[l.ID] = true
			if l.Kind == "phy" && sampleNICs[l.NIC] == "" {
				t.Fatalf("link %s on unknown NIC %q", l.ID, l.NIC)
			}
		}
		for _, a := range p.Addrs {
			if !ids[a.Link] || a.Addr.IP == nil || a.Addr.Mask == nil {
				t.Fatalf("address %+v", a)
			}
		}
	})
}

// TestReadISOFile reads network_data.json back from a boot ISO as the agent does (no
// mount), from our writer's image and from one xorriso made.
func TestReadISOFile(t *testing.T) {
	files := []configdrive.File{{Path: "openstack/latest/network_data.json", Data: []byte(sampleNetworkData)},
		{Path: "ironwork/grub.cfg", Data: []byte("cfg")}}
	img, err := configdrive.ISO("VMEDIA_BOOT_ISO", files)
	if err != nil {
		t.Fatal(err)
	}
	images := map[string][]byte{"ours": img}
	if x, err := exec.LookPath("xorriso"); err == nil {
		dir := t.TempDir()
		for _, f := range files {
			p := filepath.Join(dir, "tree", f.Path)
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, f.Data, 0o644)
		}
		out := filepath.Join(dir, "x.iso")
		if msg, err := exec.Command(x, "-as", "mkisofs", "-R", "-V", "VMEDIA_BOOT_ISO", "-o", out, filepath.Join(dir, "tree")).CombinedOutput(); err != nil {
			t.Fatalf("xorriso: %v\n%s", err, msg)
		}
		images["xorriso"], _ = os.ReadFile(out)
	}
	for name, img := range images {
		r := bytes.NewReader(img)
		if l, err := ISOLabel(r); err != nil || l != "VMEDIA_BOOT_ISO" {
			t.Errorf("%s: label %q %v", name, l, err)
		}
		b, err := ReadISOFile(r, "openstack/latest/network_data.json", 1<<20)
		if err != nil || string(b) != sampleNetworkData {
			t.Errorf("%s: read back %d bytes, %v", name, len(b), err)
		}
		if _, err := ReadISOFile(r, "openstack/latest/missing.json", 1<<20); err == nil {
			t.Errorf("%s: a missing file was found", name)
		}
		if _, err := ReadISOFile(r, "openstack/latest/network_data.json", 10); err == nil {
			t.Errorf("%s: a file over the limit was read", name)
		}
	}
	if _, err := ISOLabel(bytes.NewReader(make([]byte, 40<<10))); !errors.Is(err, ErrNotISO) {
		t.Errorf("zeros: %v", err)
	}
}

// FuzzReadISOFile: arbitrary images give a file or an error, never a panic or a huge
// allocation.
func FuzzReadISOFile(f *testing.F) {
	img, _ := configdrive.ISO("VMEDIA_BOOT_ISO", []configdrive.File{{Path: "openstack/latest/network_data.json", Data: []byte("{}")}})
	f.Add(img)
	f.Add(make([]byte, 17*2048))
	f.Fuzz(func(t *testing.T, img []byte) {
		ReadISOFile(bytes.NewReader(img), "openstack/latest/network_data.json", 1<<20)
	})
}
