package lab

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Racks beyond the first: each is its own bridge and /24 in a router namespace joined to the
// provisioning network, as a rack behind its top-of-rack switch is. The router forwards IP
// between the racks and the provisioning network (ip_forward) and runs ISC's dhcrelay, which
// relays the racks' DHCP to the server's address on the provisioning bridge with option 82;
// the server has a [[dhcp_subnet]] per rack (docs/dhcp.md) and a route to each rack through
// the router, so its conductor reaches the racks' agents and the racks reach its TFTP, HTTP
// boot and API on the provisioning address.

// MaxRacks is the most racks a lab has (rack k's subnet is the provisioning one's third
// octet + k, clear of the media segment's + 1).
const MaxRacks = 8

// routerHost is the router's address (last octet) on the provisioning network; on each
// rack it is .1, the racks' gateway and dhcrelay's giaddr.
const routerHost = 254

// Interface names of the router: its uplink (in the router namespace) and the uplink's
// peer, a port of the provisioning bridge in the lab's namespace.
const (
	routerUplink     = "up0"
	routerUplinkPeer = "rt0"
)

// RackBridge is the bridge, in the router namespace, of rack k (k >= 2).
func RackBridge(k int) string { return fmt.Sprintf("rack%d", k) }

// rackSubnet is rack k's /24 (first three octets): rack 1 is the provisioning subnet.
func rackSubnet(subnet string, k int) (string, error) {
	if k <= 1 {
		return subnet, nil
	}
	i := strings.LastIndexByte(subnet, '.')
	if i < 0 {
		return "", fmt.Errorf("subnet %q: want three octets such as 10.213.0", subnet)
	}
	third, err := strconv.Atoi(subnet[i+1:])
	if err != nil || third < 0 || third+k > 255 {
		return "", fmt.Errorf("subnet %q: rack %d's subnet would be past x.x.255", subnet, k)
	}
	return subnet[:i+1] + strconv.Itoa(third+k), nil
}

// RackRange is the DHCP range the server gives on rack k's subnet (first and last address).
func RackRange(rackNet string) (string, string) { return rackNet + ".100", rackNet + ".199" }

// checkRacks refuses rack layouts the lab cannot make.
func (o *Options) checkRacks() error {
	if o.Racks < 0 || o.Racks > MaxRacks {
		return fmt.Errorf("racks %d: want 1 to %d", o.Racks, MaxRacks)
	}
	var errs []error
	for _, n := range o.Nodes {
		if n.Rack < 0 || n.Rack > max(o.Racks, 1) {
			errs = append(errs, fmt.Errorf("machine %s: rack %d, but the lab has %d", n.Name, n.Rack, max(o.Racks, 1)))
			continue
		}
		if n.Rack <= 1 {
			continue
		}
		if o.Layout == LayoutProduction {
			errs = append(errs, fmt.Errorf("machine %s: racks behind a relay are supported in the %s layout only", n.Name, LayoutLab))
		}
		if n.Boot == BootVirtualMedia {
			errs = append(errs, fmt.Errorf("machine %s: a machine behind the relay boots from the network, not from virtual media", n.Name))
		}
		if n.BMC == "ipmi_sim" {
			errs = append(errs, fmt.Errorf("machine %s: racks behind a relay need the vbmc, not ipmi_sim", n.Name))
		}
	}
	if o.Racks > 1 {
		if o.Layout == LayoutProduction {
			errs = append(errs, fmt.Errorf("racks behind a relay are supported in the %s layout only", LayoutLab))
		}
		if _, err := exec.LookPath("dhcrelay"); err != nil {
			errs = append(errs, errors.New("racks behind a relay need ISC's dhcrelay: run scripts/deps.sh (Debian package isc-dhcp-relay)"))
		}
		if _, err := rackSubnet(o.Subnet, o.Racks); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// spreadRacks puts the machines round-robin on the racks when none names its rack.
func (o *Options) spreadRacks() {
	if o.Racks <= 1 {
		return
	}
	for _, n := range o.Nodes {
		if n.Rack != 0 {
			return
		}
	}
	for i := range o.Nodes {
		o.Nodes[i].Rack = i%o.Racks + 1
	}
}

// upRacks makes the router namespace, its uplink on the provisioning bridge, a bridge per
// rack beyond the first, the lab namespace's routes to them and dhcrelay. It returns the
// server's [[dhcp_subnet]] tables.
func upRacks(st *State, racks int, logf func(string, ...any)) (string, error) {
	router := st.Netns + "-rt"
	if err := st.update(func(s *State) { s.RouterNetns = router }); err != nil {
		return "", err
	}
	_ = exec.Command("ip", "netns", "del", router).Run() // left by a lab whose state is gone
	if err := ipCmd("netns", "add", router); err != nil {
		return "", err
	}
	uplink := fmt.Sprintf("%s.%d", st.Subnet, routerHost)
	steps := [][]string{
		{"-n", router, "link", "set", "lo", "up"},
		{"-n", st.Netns, "link", "add", routerUplinkPeer, "type", "veth", "peer", "name", routerUplink, "netns", router},
		{"-n", st.Netns, "link", "set", routerUplinkPeer, "master", st.Bridge},
		{"-n", st.Netns, "link", "set", routerUplinkPeer, "up"},
		{"-n", router, "addr", "add", uplink + "/24", "dev", routerUplink},
		{"-n", router, "link", "set", routerUplink, "up"},
	}
	var cfg strings.Builder
	relayArgs := []string{"netns", "exec", router, "dhcrelay", "-4", "-d", "-a", "-pf", filepath.Join(st.Dir, "dhcrelay.pid")}
	for k := 2; k <= racks; k++ {
		net, err := rackSubnet(st.Subnet, k)
		if err != nil {
			return "", err
		}
		br := RackBridge(k)
		steps = append(steps,
			[]string{"-n", router, "link", "add", br, "type", "bridge"},
			[]string{"-n", router, "link", "set", br, "type", "bridge", "forward_delay", "0"},
			[]string{"-n", router, "addr", "add", net + ".1/24", "dev", br},
			[]string{"-n", router, "link", "set", br, "up"},
			[]string{"-n", st.Netns, "route", "add", net + ".0/24", "via", uplink})
		first, last := RackRange(net)
		fmt.Fprintf(&cfg, "\n[[dhcp_subnet]]\nnetwork = \"%s.0/24\"\nrange = \"%s,%s\"\n", net, first, last)
		relayArgs = append(relayArgs, "-id", br)
		if err := st.update(func(s *State) { s.Racks = append(s.Racks, Rack{Bridge: br, Subnet: net}) }); err != nil {
			return "", err
		}
		logf("rack %d: bridge %s %s.1/24 in %s, relayed to %s.1, range %s-%s", k, br, net, router, st.Subnet, first, last)
	}
	for _, args := range steps {
		if err := ipCmd(args...); err != nil {
			return "", err
		}
	}
	if out, err := exec.Command("ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1").CombinedOutput(); err != nil {
		return "", fmt.Errorf("turn on forwarding in %s: %v: %s", router, err, out)
	}
	relayArgs = append(relayArgs, "-iu", routerUplink, st.Subnet+".1")
	if err := startProc(st, "dhcrelay", "ip", relayArgs...); err != nil {
		return "", err
	}
	logf("router namespace %s: %s on %s, forwarding, dhcrelay toward %s.1", router, uplink, st.Bridge, st.Subnet)
	return cfg.String(), nil
}

// Rack is a rack beyond the first: its bridge in the router namespace and its /24.
type Rack struct {
	Bridge string `json:"bridge"`
	Subnet string `json:"subnet"` // first three octets
}

// nodeNetns is the namespace a machine's tap is in and its QEMU runs in.
func nodeNetns(st *State, n Node) string {
	if n.Rack > 1 && st.RouterNetns != "" {
		return st.RouterNetns
	}
	return st.Netns
}

// nodeBridge is the bridge of a machine's taps.
func nodeBridge(st *State, n Node) string {
	switch {
	case n.Boot == BootVirtualMedia:
		return MediaBridge
	case n.Rack > 1:
		return RackBridge(n.Rack)
	}
	return st.Bridge
}
