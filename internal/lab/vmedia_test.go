package lab

import (
	"strings"
	"testing"
)

func TestMediaSubnet(t *testing.T) {
	for in, want := range map[string]string{"10.213.0": "10.213.1", "10.216.7": "10.216.8", "192.168.254": "192.168.255"} {
		if got, err := mediaSubnet(in); err != nil || got != want {
			t.Errorf("mediaSubnet(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"10.213.255", "10.213.x", "", "10"} {
		if got, err := mediaSubnet(bad); err == nil {
			t.Errorf("mediaSubnet(%q) = %q, want an error", bad, got)
		}
	}
}

// Machines that cannot boot from virtual media are refused before anything is made.
func TestCheckVirtualMedia(t *testing.T) {
	ok := Options{Layout: LayoutLab, Subnet: "10.213.0", Nodes: []NodeSpec{
		{Name: "a", Power: "redfish", BMC: "vbmc", Boot: BootVirtualMedia}, {Name: "b", Power: "ipmi", BMC: "vbmc"}}}
	if err := ok.checkVirtualMedia(); err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]Options{
		"ipmi":       {Layout: LayoutLab, Subnet: "10.213.0", Nodes: []NodeSpec{{Name: "a", Power: "ipmi", BMC: "vbmc", Boot: BootVirtualMedia}}},
		"ipmi_sim":   {Layout: LayoutLab, Subnet: "10.213.0", Nodes: []NodeSpec{{Name: "a", Power: "redfish", BMC: "ipmi_sim", Boot: BootVirtualMedia}}},
		"production": {Layout: LayoutProduction, Subnet: "10.213.0", Nodes: []NodeSpec{{Name: "a", Power: "redfish", BMC: "vbmc", Boot: BootVirtualMedia}}},
		"discover":   {Layout: LayoutLab, Subnet: "10.213.0", Nodes: []NodeSpec{{Name: "a", Power: "redfish", BMC: "vbmc", Boot: BootVirtualMedia, Discover: true}}},
		"unknown":    {Layout: LayoutLab, Subnet: "10.213.0", Nodes: []NodeSpec{{Name: "a", Power: "redfish", BMC: "vbmc", Boot: "floppy"}}},
		"subnet":     {Layout: LayoutLab, Subnet: "10.213.255", Nodes: []NodeSpec{{Name: "a", Power: "redfish", BMC: "vbmc", Boot: BootVirtualMedia}}},
	} {
		if err := o.checkVirtualMedia(); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// A virtual media machine's NIC has no option ROM (it cannot network-boot), and its
// network_data gives its static address and the segment's gateway.
func TestVirtualMediaMachine(t *testing.T) {
	st := &State{Dir: "/lab", Netns: "ns"}
	n := Node{Name: "m", Firmware: "bios", MAC: "52:54:00:1a:01:01", Tap: "tap0", Disk: "/lab/m.disk", Serial: "/lab/m.log",
		Boot: BootVirtualMedia, Address: mediaAddress("10.213.1", 0)}
	args, err := qemuCommand(st, n, NodeSpec{Name: "m", Firmware: "bios"}, "ironwork")
	if err != nil {
		t.Fatal(err)
	}
	if line := strings.Join(args, " "); !strings.Contains(line, "mac=52:54:00:1a:01:01,romfile=") {
		t.Errorf("the NIC keeps its boot ROM: %s", line)
	}
	nd := networkData(n, "10.213.1")
	nets := nd["networks"].([]any)[0].(map[string]any)
	route := nets["routes"].([]any)[0].(map[string]any)
	if nets["ip_address"] != "10.213.1.10" || route["gateway"] != "10.213.1.1" ||
		nd["links"].([]any)[0].(map[string]any)["ethernet_mac_address"] != n.MAC {
		t.Errorf("network_data: %v", nd)
	}
}
