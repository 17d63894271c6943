package lab

import (
	"strings"
	"testing"
)

func TestRackSubnet(t *testing.T) {
	for _, tc := range []struct {
		subnet string
		rack   int
		want   string
	}{{"10.213.0", 1, "10.213.0"}, {"10.213.0", 2, "10.213.2"}, {"10.226.0", 8, "10.226.8"}, {"10.213.253", 2, "10.213.255"}} {
		if got, err := rackSubnet(tc.subnet, tc.rack); err != nil || got != tc.want {
			t.Errorf("rackSubnet(%q, %d) = %q, %v; want %q", tc.subnet, tc.rack, got, err, tc.want)
		}
	}
	for _, bad := range []string{"10.213.254", "10.213.x", "10"} {
		if got, err := rackSubnet(bad, 2); err == nil {
			t.Errorf("rackSubnet(%q, 2) = %q, want an error", bad, got)
		}
	}
}

// With racks and no machine naming its own, the machines go round-robin; a machine that
// names its rack keeps every machine where it was put.
func TestSpreadRacks(t *testing.T) {
	o := Options{Racks: 2, Nodes: []NodeSpec{{Name: "a"}, {Name: "b"}, {Name: "c"}}}
	o.spreadRacks()
	if got := []int{o.Nodes[0].Rack, o.Nodes[1].Rack, o.Nodes[2].Rack}; got[0] != 1 || got[1] != 2 || got[2] != 1 {
		t.Errorf("round-robin racks %v, want [1 2 1]", got)
	}
	o = Options{Racks: 2, Nodes: []NodeSpec{{Name: "a", Rack: 2}, {Name: "b"}}}
	o.spreadRacks()
	if o.Nodes[0].Rack != 2 || o.Nodes[1].Rack != 0 {
		t.Errorf("racks named by the caller changed: %+v", o.Nodes)
	}
	o = Options{Nodes: []NodeSpec{{Name: "a"}, {Name: "b"}}}
	o.spreadRacks()
	if o.Nodes[0].Rack != 0 || o.Nodes[1].Rack != 0 {
		t.Errorf("one rack: machines moved: %+v", o.Nodes)
	}
}

// Rack layouts the lab cannot make are refused before anything is made.
func TestCheckRacks(t *testing.T) {
	ok := Options{Layout: LayoutLab, Subnet: "10.213.0", Racks: 2, Nodes: []NodeSpec{{Name: "a", BMC: "vbmc", Rack: 1}, {Name: "b", BMC: "vbmc", Rack: 2}}}
	if err := ok.checkRacks(); err != nil && !strings.Contains(err.Error(), "dhcrelay") {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		o    Options
		want string
	}{
		"too many":         {Options{Layout: LayoutLab, Subnet: "10.213.0", Racks: MaxRacks + 1}, "racks 9"},
		"no rack":          {Options{Layout: LayoutLab, Subnet: "10.213.0", Racks: 2, Nodes: []NodeSpec{{Name: "a", Rack: 3}}}, "machine a: rack 3"},
		"one rack":         {Options{Layout: LayoutLab, Subnet: "10.213.0", Nodes: []NodeSpec{{Name: "a", Rack: 2}}}, "machine a: rack 2, but the lab has 1"},
		"production":       {Options{Layout: LayoutProduction, Subnet: "10.213.0", Racks: 2, Nodes: []NodeSpec{{Name: "a", BMC: "vbmc", Rack: 2}}}, "lab layout only"},
		"vmedia":           {Options{Layout: LayoutLab, Subnet: "10.213.0", Racks: 2, Nodes: []NodeSpec{{Name: "a", BMC: "vbmc", Rack: 2, Boot: BootVirtualMedia}}}, "not from virtual media"},
		"ipmi_sim":         {Options{Layout: LayoutLab, Subnet: "10.213.0", Racks: 2, Nodes: []NodeSpec{{Name: "a", BMC: "ipmi_sim", Rack: 2}}}, "not ipmi_sim"},
		"subnet":           {Options{Layout: LayoutLab, Subnet: "10.213.254", Racks: 2}, "past x.x.255"},
		"production racks": {Options{Layout: LayoutProduction, Subnet: "10.213.0", Racks: 2, Nodes: []NodeSpec{{Name: "a", BMC: "vbmc", Rack: 1}}}, "lab layout only"},
	} {
		if err := tc.o.checkRacks(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
	}
}
