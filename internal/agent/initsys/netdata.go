package initsys

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
)

// NetworkData is a node's network_data.json in the format Ironic and Nova write it
// (openstack/latest/network_data.json on a config drive or a virtual media ISO): links
// (physical NICs, bonds, VLANs), networks on them (static IPv4 and IPv6, or DHCP), their
// routes, and DNS services.
type NetworkData struct {
	Links    []NetLink    `json:"links"`
	Networks []NetNetwork `json:"networks"`
	Services []NetService `json:"services"`
}

// NetLink is one link of network_data.
type NetLink struct {
	ID        string   `json:"id"`
	Type      string   `json:"type"` // phy, ethernet (and other physical types), bond, vlan
	MAC       string   `json:"ethernet_mac_address"`
	MTU       int      `json:"mtu"`
	BondLinks []string `json:"bond_links"`
	BondMode  string   `json:"bond_mode"`
	VLANLink  string   `json:"vlan_link"`
	VLANID    int      `json:"vlan_id"`
	VLANMAC   string   `json:"vlan_mac_address"`
}

// NetNetwork is one network of network_data.
type NetNetwork struct {
	ID             string       `json:"id"`
	Link           string       `json:"link"`
	Type           string       `json:"type"` // ipv4, ipv6, ipv4_dhcp, ipv6_dhcp, ipv6_slaac
	IPAddress      string       `json:"ip_address"`
	Netmask        string       `json:"netmask"`
	Routes         []NetRoute   `json:"routes"`
	Services       []NetService `json:"services"`
	DNSNameservers []string     `json:"dns_nameservers"`
}

// NetRoute is a route of a network.
type NetRoute struct {
	Network string `json:"network"`
	Netmask string `json:"netmask"`
	Gateway string `json:"gateway"`
}

// NetService is a service (dns) of network_data.
type NetService struct {
	Type    string `json:"type"`
	Address string `json:"address"`
}

// NetPlan is what to configure, resolved against the machine's NICs: every link, static
// address and route, the links to run DHCP on, and the DNS servers.
type NetPlan struct {
	Links  []PlanLink
	Addrs  []PlanAddr
	Routes []PlanRoute
	DHCP   []string // link IDs
	DNS    []net.IP
}

// PlanLink is a link to bring up: a NIC (Kind "phy"), a VLAN on a parent link, or a bond.
type PlanLink struct {
	ID, Kind string
	NIC      string // phy: the NIC's name
	MTU      int
	Parent   string   // vlan: the parent link's ID
	VLANID   int      // vlan
	Members  []string // bond: member link IDs
	BondMode string
}

// PlanAddr is a static address on a link.
type PlanAddr struct {
	Link string
	Addr net.IPNet
}

// PlanRoute is a route through a link.
type PlanRoute struct {
	Link    string
	Dst     net.IPNet
	Gateway net.IP
}

// ErrNetworkData is wrapped by every complaint about network_data.
var ErrNetworkData = errors.New("invalid network_data")

// PlanNetwork parses network_data.json and resolves its links against nics (name → MAC).
func PlanNetwork(doc []byte, nics map[string]string) (NetPlan, error) {
	var nd NetworkData
	if err := json.Unmarshal(doc, &nd); err != nil {
		return NetPlan{}, fmt.Errorf("%w: %w", ErrNetworkData, err)
	}
	bad := func(format string, a ...any) (NetPlan, error) {
		return NetPlan{}, fmt.Errorf("%w: %s", ErrNetworkData, fmt.Sprintf(format, a...))
	}
	byMAC := map[string]string{}
	for name, mac := range nics {
		byMAC[strings.ToLower(mac)] = name
	}
	var p NetPlan
	links := map[string]PlanLink{}
	for i, l := range nd.Links {
		if _, dup := links[l.ID]; l.ID == "" || dup {
			return bad("link %d: a unique id is required", i)
		}
		if l.MTU < 0 || l.MTU > 65535 {
			return bad("link %s: mtu %d", l.ID, l.MTU)
		}
		pl := PlanLink{ID: l.ID, MTU: l.MTU}
		switch l.Type {
		case "bond":
			if len(l.BondLinks) == 0 {
				return bad("bond %s has no bond_links", l.ID)
			}
			pl.Kind, pl.Members, pl.BondMode = "bond", l.BondLinks, l.BondMode
		case "vlan":
			if l.VLANLink == "" || l.VLANID < 1 || l.VLANID > 4094 {
				return bad("vlan %s: vlan_link and a vlan_id from 1 to 4094 are required", l.ID)
			}
			pl.Kind, pl.Parent, pl.VLANID = "vlan", l.VLANLink, l.VLANID
		default: // phy, ethernet, bridge, ovs, vif, tap...: a NIC found by its MAC
			hw, err := net.ParseMAC(l.MAC)
			if err != nil {
				return bad("link %s: ethernet_mac_address %q", l.ID, l.MAC)
			}
			name, ok := byMAC[hw.String()]
			if !ok {
				return bad("link %s: no NIC has MAC %s", l.ID, hw)
			}
			pl.Kind, pl.NIC = "phy", name
		}
		p.Links = append(p.Links, pl)
		links[l.ID] = pl
	}
	for _, l := range p.Links {
		for _, m := range l.Members {
			if ml, ok := links[m]; !ok || ml.Kind != "phy" {
				return bad("bond %s: member %q is not a physical link", l.ID, m)
			}
		}
		if _, ok := links[l.Parent]; l.Kind == "vlan" && !ok {
			return bad("vlan %s: vlan_link %q is not a link", l.ID, l.Parent)
		}
	}
	dns := func(s string) error {
		ip := net.ParseIP(s)
		if ip == nil {
			return fmt.Errorf("%w: DNS address %q", ErrNetworkData, s)
		}
		p.DNS = append(p.DNS, ip)
		return nil
	}
	for _, s := range nd.Services {
		if s.Type == "dns" {
			if err := dns(s.Address); err != nil {
				return NetPlan{}, err
			}
		}
	}
	for i, n := range nd.Networks {
		if _, ok := links[n.Link]; !ok {
			return bad("network %d (%s): link %q is not a link", i, n.ID, n.Link)
		}
		switch n.Type {
		case "ipv4_dhcp", "ipv6_dhcp", "ipv6_slaac", "ipv6_dhcpv6-stateful", "ipv6_dhcpv6-stateless":
			p.DHCP = append(p.DHCP, n.Link)
			continue
		case "ipv4", "ipv6":
		default:
			return bad("network %s: type %q", n.ID, n.Type)
		}
		addr, err := parseAddr(n.IPAddress, n.Netmask, n.Type == "ipv6")
		if err != nil {
			return bad("network %s: %v", n.ID, err)
		}
		p.Addrs = append(p.Addrs, PlanAddr{Link: n.Link, Addr: addr})
		for _, r := range n.Routes {
			dst, err := parseAddr(r.Network, r.Netmask, n.Type == "ipv6")
			if err != nil {
				return bad("network %s: route: %v", n.ID, err)
			}
			dst.IP = dst.IP.Mask(dst.Mask)
			gw := net.ParseIP(r.Gateway)
			if gw == nil || (gw.To4() == nil) != (n.Type == "ipv6") {
				return bad("network %s: route gateway %q", n.ID, r.Gateway)
			}
			p.Routes = append(p.Routes, PlanRoute{Link: n.Link, Dst: dst, Gateway: gw})
		}
		for _, s := range n.Services {
			if s.Type == "dns" {
				if err := dns(s.Address); err != nil {
					return NetPlan{}, err
				}
			}
		}
		for _, s := range n.DNSNameservers {
			if err := dns(s); err != nil {
				return NetPlan{}, err
			}
		}
	}
	return p, nil
}

// parseAddr reads an address with its mask: "a.b.c.d" with a dotted or prefix netmask,
// or an address in CIDR form ("fd00::5/64"), as network_data writes either.
func parseAddr(ip, mask string, v6 bool) (net.IPNet, error) {
	if strings.Contains(ip, "/") {
		a, n, err := net.ParseCIDR(ip)
		if err != nil {
			return net.IPNet{}, fmt.Errorf("address %q", ip)
		}
		if (a.To4() == nil) != v6 {
			return net.IPNet{}, fmt.Errorf("address %q is of the other family", ip)
		}
		return net.IPNet{IP: a, Mask: n.Mask}, nil
	}
	a := net.ParseIP(ip)
	if a == nil || (a.To4() == nil) != v6 {
		return net.IPNet{}, fmt.Errorf("address %q", ip)
	}
	bits := 32
	if v6 {
		bits = 128
	} else {
		a = a.To4()
	}
	var m net.IPMask
	if mk := net.ParseIP(mask); mk != nil {
		if !v6 {
			mk = mk.To4()
		}
		m = net.IPMask(mk)
		if ones, b := m.Size(); b != bits || (ones == 0 && !mk.IsUnspecified()) {
			return net.IPNet{}, fmt.Errorf("netmask %q", mask)
		}
	} else {
		var n int
		if _, err := fmt.Sscanf(strings.TrimPrefix(mask, "/"), "%d", &n); err != nil || n < 0 || n > bits {
			return net.IPNet{}, fmt.Errorf("netmask %q", mask)
		}
		m = net.CIDRMask(n, bits)
	}
	return net.IPNet{IP: a, Mask: m}, nil
}
