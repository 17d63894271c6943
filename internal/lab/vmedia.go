package lab

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Boot methods of a lab machine's deploy ramdisk (NodeSpec.Boot).
const (
	// BootNetwork: DHCP, then iPXE (SeaBIOS) or OVMF's PXE, from the server's boot services.
	BootNetwork = "pxe"
	// BootVirtualMedia: the redfish-virtual-media boot interface; the BMC attaches the
	// server's boot ISO as a virtual CD, and the machine sits on a segment no DHCP server
	// serves, its address given by the node's network_data.
	BootVirtualMedia = "vmedia"
)

// MediaBridge is the bridge, in the lab's namespace, of the machines that boot from virtual
// media: the server's DHCP, TFTP and HTTP boot services are on Bridge only, so nothing
// answers DHCP here. The namespace owns an address on both bridges, so the machines reach
// the server's API and HTTP boot service on Bridge's address through their gateway.
const MediaBridge = "br1"

// checkVirtualMedia refuses machines that cannot boot from virtual media: only the vbmc's
// Redfish service attaches it, and the media segment exists in the lab layout only.
func (o *Options) checkVirtualMedia() error {
	var errs []error
	for _, n := range o.Nodes {
		switch n.Boot {
		case "", BootNetwork:
			continue
		case BootVirtualMedia:
		default:
			errs = append(errs, fmt.Errorf("machine %s: boot %q is neither %s nor %s", n.Name, n.Boot, BootNetwork, BootVirtualMedia))
			continue
		}
		if n.Power != "redfish" || n.BMC != "vbmc" {
			errs = append(errs, fmt.Errorf("machine %s: virtual media needs the redfish driver and the vbmc (not %s through %s)", n.Name, n.Power, n.BMC))
		}
		if o.Layout == LayoutProduction {
			errs = append(errs, fmt.Errorf("machine %s: virtual media boot is supported in the %s layout only", n.Name, LayoutLab))
		}
		if n.Discover {
			errs = append(errs, fmt.Errorf("machine %s: a machine to discover boots from the network, not from virtual media", n.Name))
		}
	}
	if _, err := mediaSubnet(o.Subnet); err != nil && len(errs) == 0 && o.usesVirtualMedia() {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (o *Options) usesVirtualMedia() bool {
	for _, n := range o.Nodes {
		if n.Boot == BootVirtualMedia {
			return true
		}
	}
	return false
}

// mediaSubnet is the media segment's /24: the provisioning subnet's next one
// (10.213.0 -> 10.213.1).
func mediaSubnet(subnet string) (string, error) {
	i := strings.LastIndexByte(subnet, '.')
	third, err := strconv.Atoi(subnet[i+1:])
	if i < 0 || err != nil || third < 0 || third >= 255 {
		return "", fmt.Errorf("subnet %q: the virtual media segment is the next /24, which it has none of", subnet)
	}
	return subnet[:i+1] + strconv.Itoa(third+1), nil
}

// mediaAddress is machine i's static address on the media segment.
func mediaAddress(mediaNet string, i int) string { return fmt.Sprintf("%s.%d", mediaNet, 10+i) }

// networkData is a virtual media machine's network_data, in Ironic's (OpenStack's) format:
// its first NIC with the static address, the segment's gateway (the namespace, which owns the
// provisioning bridge's address too) as default route.
func networkData(n Node, mediaNet string) map[string]any {
	return map[string]any{
		"links": []any{map[string]any{"id": "port0", "type": "phy", "ethernet_mac_address": n.MAC, "mtu": 1500}},
		"networks": []any{map[string]any{"id": "net0", "type": "ipv4", "link": "port0", "ip_address": n.Address,
			"netmask": "255.255.255.0",
			"routes":  []any{map[string]any{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": mediaNet + ".1"}}}},
		"services": []any{},
	}
}

// VirtualMediaBootInterface is the boot interface of the virtual media machines.
const VirtualMediaBootInterface = "redfish-virtual-media"
