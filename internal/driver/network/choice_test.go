package network

import (
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// TestChoice checks flat's choice of port or portgroup against Ironic's ordering, including
// the physical-network rules that only a VIF with network segments exercises.
func TestChoice(t *testing.T) {
	vifInfo := func(id string) ironwork.JSONObject { return ironwork.JSONObject{conductor.TenantVIFKey: id} }
	port := func(uuid string, pxe bool, physnet string, group int64, vif string) *ironwork.Port {
		p := &ironwork.Port{UUID: uuid, PXEEnabled: pxe, PhysicalNetwork: physnet, PortgroupID: group}
		if vif != "" {
			p.InternalInfo = vifInfo(vif)
		}
		return p
	}
	group := func(id int64, uuid, physnet, vif string) *ironwork.Portgroup {
		g := &ironwork.Portgroup{ID: id, UUID: uuid, PhysicalNetwork: physnet}
		if vif != "" {
			g.InternalInfo = vifInfo(vif)
		}
		return g
	}
	for _, tc := range []struct {
		name     string
		ports    []*ironwork.Port
		groups   []*ironwork.Portgroup
		vif      conductor.VIF
		physnets []string
		want     string // uuid, or "" for none free
	}{
		{"pxe before plain", []*ironwork.Port{port("a", false, "", 0, ""), port("b", true, "", 0, "")}, nil, conductor.VIF{ID: "v"}, nil, "b"},
		{"ties keep order", []*ironwork.Port{port("a", true, "", 0, ""), port("b", true, "", 0, "")}, nil, conductor.VIF{ID: "v"}, nil, "a"},
		{"portgroup before pxe port", []*ironwork.Port{port("a", true, "", 0, ""), port("m", false, "", 7, "")},
			[]*ironwork.Portgroup{group(7, "g", "", "")}, conductor.VIF{ID: "v"}, nil, "g"},
		{"busy member: its free ports instead", []*ironwork.Port{port("m1", false, "", 7, "x"), port("m2", false, "", 7, "")},
			[]*ironwork.Portgroup{group(7, "g", "", "")}, conductor.VIF{ID: "v"}, nil, "m2"},
		{"matching physnet first", []*ironwork.Port{port("a", true, "", 0, ""), port("b", false, "net1", 0, "")}, nil,
			conductor.VIF{ID: "v"}, []string{"net1"}, "b"},
		{"other physnet excluded", []*ironwork.Port{port("a", true, "net2", 0, "")}, nil, conductor.VIF{ID: "v"}, []string{"net1"}, ""},
		{"named port", []*ironwork.Port{port("a", true, "", 0, ""), port("b", false, "", 0, "")}, nil, conductor.VIF{ID: "v", PortUUID: "b"}, nil, "b"},
		{"busy ports", []*ironwork.Port{port("a", true, "", 0, "x")}, nil, conductor.VIF{ID: "v"}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			free, err := freeCandidates(tc.ports, tc.groups, tc.vif, tc.physnets)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if len(free) > 0 {
				if c := best(free, tc.physnets); c.group != nil {
					got = c.group.UUID
				} else {
					got = c.port.UUID
				}
			}
			if got != tc.want {
				t.Fatalf("chose %q, want %q", got, tc.want)
			}
		})
	}
	_, err := freeCandidates([]*ironwork.Port{port("a", true, "", 0, "v")}, nil, conductor.VIF{ID: "v"}, nil)
	if ironwork.ErrorCode(err) != ironwork.ECONFLICT {
		t.Fatalf("VIF already on a port: %v, want a conflict", err)
	}
}
