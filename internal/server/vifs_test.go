package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/ports"

	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

// faultOf returns the faultstring of an Ironic error answered to a gophercloud call.
func faultOf(t *testing.T, err error, status int) string {
	t.Helper()
	var e gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &e) || e.Actual != status {
		t.Fatalf("error = %v, want HTTP %d", err, status)
	}
	var outer struct {
		ErrorMessage string `json:"error_message"`
	}
	var inner struct {
		FaultString string `json:"faultstring"`
	}
	if json.Unmarshal(e.Body, &outer) != nil || json.Unmarshal([]byte(outer.ErrorMessage), &inner) != nil {
		t.Fatalf("not an Ironic error body: %s", e.Body)
	}
	return inner.FaultString
}

func vifIDs(t *testing.T, c *gophercloud.ServiceClient, node string) []string {
	t.Helper()
	vs, err := nodes.ListVirtualInterfaces(context.Background(), c, node).Extract()
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, v := range vs {
		out = append(out, v.ID)
	}
	return out
}

func TestVIFsFlatAndNoop(t *testing.T) {
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			srv := startServer(t, target.DSN(t))
			ctx := context.Background()
			c := gopherClient(t, srv, "1.67")
			store := srv.Store()

			node, err := nodes.Create(ctx, c, nodes.CreateOpts{Name: "vif-node", Driver: "fake-hardware"}).Extract()
			if err != nil {
				t.Fatal(err)
			}
			if node.NetworkInterface != "flat" {
				t.Fatalf("default network interface = %q, want flat (Ironic's default when flat is enabled)", node.NetworkInterface)
			}
			t.Run("no ports: no free port", func(t *testing.T) {
				err := nodes.AttachVirtualInterface(ctx, c, node.UUID, nodes.VirtualInterfaceOpts{ID: "vif-0"}).ExtractErr()
				if got := faultOf(t, err, 400); got != "Unable to attach VIF vif-0, not enough free physical ports." {
					t.Fatalf("fault = %q", got)
				}
			})

			yes, no := true, false
			mkPort := func(mac string, pxe *bool, group string) *ports.Port {
				t.Helper()
				opts := ports.CreateOpts{NodeUUID: node.UUID, Address: mac, PXEEnabled: pxe}
				if group != "" {
					opts.PortGroupUUID = group
				}
				p, err := ports.Create(ctx, c, opts).Extract()
				if err != nil {
					t.Fatal(err)
				}
				return p
			}
			plain := mkPort("52:54:00:00:00:01", &no, "")
			pxe := mkPort("52:54:00:00:00:02", &yes, "")
			var pg struct {
				UUID string `json:"uuid"`
			}
			if _, err := c.Post(ctx, c.ServiceURL("portgroups"), map[string]any{"node_uuid": node.UUID, "name": "bond0",
				"address": "52:54:00:00:00:10"}, &pg, &gophercloud.RequestOpts{OkCodes: []int{201}}); err != nil {
				t.Fatal(err)
			}
			t.Run("empty portgroup is not free", func(t *testing.T) {
				err := nodes.AttachVirtualInterface(ctx, c, node.UUID, nodes.VirtualInterfaceOpts{ID: "vif-x", PortgroupUUID: pg.UUID}).ExtractErr()
				if got := faultOf(t, err, 400); !strings.Contains(got, "not enough free physical ports") {
					t.Fatalf("fault = %q", got)
				}
			})
			member := mkPort("52:54:00:00:00:11", &yes, pg.UUID)

			internal := func(uuid string, group bool) string {
				t.Helper()
				if group {
					g, err := store.GetPortgroup(ctx, uuid)
					if err != nil {
						t.Fatal(err)
					}
					s, _ := g.InternalInfo[conductor.TenantVIFKey].(string)
					return s
				}
				p, err := store.GetPort(ctx, uuid)
				if err != nil {
					t.Fatal(err)
				}
				s, _ := p.InternalInfo[conductor.TenantVIFKey].(string)
				return s
			}
			attach := func(id string) {
				t.Helper()
				if err := nodes.AttachVirtualInterface(ctx, c, node.UUID, nodes.VirtualInterfaceOpts{ID: id}).ExtractErr(); err != nil {
					t.Fatalf("attach %s: %v", id, err)
				}
			}
			t.Run("portgroup first, then pxe port, then the other", func(t *testing.T) {
				attach("vif-a")
				if got := internal(pg.UUID, true); got != "vif-a" {
					t.Fatalf("portgroup holds %q, want vif-a", got)
				}
				attach("vif-b")
				if got := internal(pxe.UUID, false); got != "vif-b" {
					t.Fatalf("pxe port holds %q, want vif-b", got)
				}
				attach("vif-c")
				if got := internal(plain.UUID, false); got != "vif-c" {
					t.Fatalf("plain port holds %q, want vif-c", got)
				}
				if got := internal(member.UUID, false); got != "" {
					t.Fatalf("member of the bound portgroup holds %q", got)
				}
				err := nodes.AttachVirtualInterface(ctx, c, node.UUID, nodes.VirtualInterfaceOpts{ID: "vif-d"}).ExtractErr()
				if got := faultOf(t, err, 400); got != "Unable to attach VIF vif-d, not enough free physical ports." {
					t.Fatalf("fault = %q", got)
				}
				if got := strings.Join(vifIDs(t, c, node.UUID), ","); got != "vif-c,vif-b,vif-a" {
					t.Fatalf("vifs = %s, want ports then portgroups", got)
				}
			})
			t.Run("already attached", func(t *testing.T) {
				err := nodes.AttachVirtualInterface(ctx, c, node.UUID, nodes.VirtualInterfaceOpts{ID: "vif-b"}).ExtractErr()
				want := "Unable to attach VIF because VIF vif-b is already attached to Ironic Port " + pxe.UUID
				if got := faultOf(t, err, 409); got != want {
					t.Fatalf("fault = %q, want %q", got, want)
				}
			})
			t.Run("detach and named port", func(t *testing.T) {
				if err := nodes.DetachVirtualInterface(ctx, c, node.UUID, "vif-a").ExtractErr(); err != nil {
					t.Fatal(err)
				}
				if got := internal(pg.UUID, true); got != "" {
					t.Fatalf("portgroup still holds %q", got)
				}
				// As Ironic: a port inside a portgroup is never a candidate of its own by name.
				err := nodes.AttachVirtualInterface(ctx, c, node.UUID, nodes.VirtualInterfaceOpts{ID: "vif-m", PortUUID: member.UUID}).ExtractErr()
				if got := faultOf(t, err, 400); !strings.Contains(got, "not enough free physical ports") {
					t.Fatalf("fault = %q", got)
				}
				if err := nodes.AttachVirtualInterface(ctx, c, node.UUID, nodes.VirtualInterfaceOpts{ID: "vif-m", PortgroupUUID: pg.UUID}).ExtractErr(); err != nil {
					t.Fatal(err)
				}
				if got := internal(pg.UUID, true); got != "vif-m" {
					t.Fatalf("portgroup holds %q", got)
				}
				if err := nodes.DetachVirtualInterface(ctx, c, node.UUID, "vif-c").ExtractErr(); err != nil {
					t.Fatal(err)
				}
				if err := nodes.AttachVirtualInterface(ctx, c, node.UUID, nodes.VirtualInterfaceOpts{ID: "vif-p", PortUUID: plain.UUID}).ExtractErr(); err != nil {
					t.Fatal(err)
				}
				if got := internal(plain.UUID, false); got != "vif-p" {
					t.Fatalf("plain port holds %q", got)
				}
			})
			t.Run("detach unknown", func(t *testing.T) {
				err := nodes.DetachVirtualInterface(ctx, c, node.UUID, "vif-zz").ExtractErr()
				want := "Unable to detach VIF vif-zz from node " + node.UUID + " because it is not attached to it."
				if got := faultOf(t, err, 400); got != want {
					t.Fatalf("fault = %q, want %q", got, want)
				}
			})
			t.Run("bad requests", func(t *testing.T) {
				for _, tc := range []struct {
					body any
					want string
				}{
					{map[string]any{}, "Schema error for vif: 'id' is a required property"},
					{map[string]any{"id": 5}, "Schema error for vif: 5 is not of type 'string'"},
					{map[string]any{"id": "a b"}, "Expected UUID or name for id: a b"},
					{map[string]any{"id": "v", "port_uuid": plain.UUID, "portgroup_uuid": pg.UUID}, "Cannot specify both port_uuid and portgroup_uuid"},
				} {
					_, err := c.Post(ctx, c.ServiceURL("nodes", node.UUID, "vifs"), tc.body, nil, &gophercloud.RequestOpts{OkCodes: []int{204}})
					if got := faultOf(t, err, 400); got != tc.want {
						t.Errorf("%v: fault = %q, want %q", tc.body, got, tc.want)
					}
				}
				old := gopherClient(t, srv, "1.27")
				_, err := nodes.ListVirtualInterfaces(ctx, old, node.UUID).Extract()
				wantStatus(t, err, http.StatusNotFound)
			})
			t.Run("port with a VIF is not deleted", func(t *testing.T) {
				err := ports.Delete(ctx, c, pxe.UUID).ExtractErr()
				want := "Cannot delete the port " + pxe.UUID + " as it is bound to VIF vif-b for use."
				if got := faultOf(t, err, 409); got != want {
					t.Fatalf("fault = %q, want %q", got, want)
				}
			})
			t.Run("node locked", func(t *testing.T) {
				n, err := store.ReserveNode(ctx, node.UUID, "someone-else")
				if err != nil {
					t.Fatal(err)
				}
				defer store.ReleaseNode(ctx, n.ID, "someone-else")
				err = nodes.AttachVirtualInterface(ctx, c, node.UUID, nodes.VirtualInterfaceOpts{ID: "vif-l"}).ExtractErr()
				want := "Node " + node.UUID + " is locked by host someone-else, please retry after the current operation is completed."
				if got := faultOf(t, err, 409); got != want {
					t.Fatalf("fault = %q, want %q", got, want)
				}
				// Listing takes no lock.
				if len(vifIDs(t, c, node.UUID)) != 3 {
					t.Fatal("list of a locked node failed")
				}
			})
			t.Run("noop", func(t *testing.T) {
				n2, err := nodes.Create(ctx, c, nodes.CreateOpts{Name: "noop-node", Driver: "fake-hardware", NetworkInterface: "noop"}).Extract()
				if err != nil {
					t.Fatal(err)
				}
				p := mkPortOf(t, c, n2.UUID, "52:54:00:00:01:01")
				if err := nodes.AttachVirtualInterface(ctx, c, n2.UUID, nodes.VirtualInterfaceOpts{ID: "vif-n"}).ExtractErr(); err != nil {
					t.Fatal(err)
				}
				if got := vifIDs(t, c, n2.UUID); len(got) != 0 {
					t.Fatalf("noop lists %v", got)
				}
				if got := internal(p.UUID, false); got != "" {
					t.Fatalf("noop recorded %q on the port", got)
				}
				if err := nodes.DetachVirtualInterface(ctx, c, n2.UUID, "never-attached").ExtractErr(); err != nil {
					t.Fatalf("noop detach: %v", err)
				}
			})
		})
	}
}

func mkPortOf(t *testing.T, c *gophercloud.ServiceClient, node, mac string) *ports.Port {
	t.Helper()
	p, err := ports.Create(context.Background(), c, ports.CreateOpts{NodeUUID: node, Address: mac}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
