package conductor_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

func TestVIFs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := e.node(t, nil)
	vifs, err := listVIFs(t, e.c, n.UUID)
	ok(t, err)
	if vifs == nil || len(vifs) != 0 {
		t.Errorf("VIFs of a new node: %#v, want an empty list", vifs)
	}
	ok(t, attachVIF(t, e.c, n.UUID, conductor.VIF{ID: "vif-a"}))
	ok(t, attachVIF(t, e.c, n.UUID, conductor.VIF{ID: "vif-b", PortUUID: "p"}))
	ok(t, detachVIF(t, e.c, n.UUID, "vif-a"))
	vifs, err = listVIFs(t, e.c, n.UUID)
	ok(t, err)
	if diff := cmp.Diff([]conductor.VIF{{ID: "vif-b", PortUUID: "p"}}, vifs); diff != "" {
		t.Errorf("VIFs (-want +got):\n%s", diff)
	}
	// Failures are returned and recorded in the node's history.
	wantCode(t, detachVIF(t, e.c, n.UUID, "vif-a"), ironwork.ENOTFOUND)
	e.rec.failOn("network.AttachVIF(vif-c)")
	if err := attachVIF(t, e.c, n.UUID, conductor.VIF{ID: "vif-c"}); err == nil {
		t.Fatal("a failed attach returned no error")
	}
	hist := strings.Join(e.history(t, n), "\n")
	for _, want := range []string{"Failed to detach VIF vif-a", "Failed to attach VIF vif-c"} {
		if !strings.Contains(hist, want) {
			t.Errorf("history %q lacks %q", hist, want)
		}
	}
	e.settled(t, n.UUID, ironwork.Available)
}

func TestVIFsWithoutNetworkInterface(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := e.node(t, func(n *ironwork.Node) { n.Interfaces[ironwork.NetworkInterface] = "no-such-network" })
	wantCode(t, attachVIF(t, e.c, n.UUID, conductor.VIF{ID: "v"}), ironwork.EINVALID)
	wantCode(t, detachVIF(t, e.c, n.UUID, "v"), ironwork.EINVALID)
	_, err := listVIFs(t, e.c, n.UUID)
	wantCode(t, err, ironwork.EINVALID)
	_, err = listVIFs(t, e.c, "no-such-node")
	wantCode(t, err, ironwork.ENOTFOUND)
	wantCode(t, attachVIF(t, e.c, "no-such-node", conductor.VIF{ID: "v"}), ironwork.ENOTFOUND)
	wantCode(t, detachVIF(t, e.c, "no-such-node", "v"), ironwork.ENOTFOUND)
	e.settled(t, n.UUID, ironwork.Available)
}

func TestTaskPorts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	n := e.node(t, nil)
	other := e.node(t, nil)
	g := &ironwork.Portgroup{NodeUUID: n.UUID, Address: "52:54:00:00:00:10", Name: "bond0"}
	ok(t, e.store.CreatePortgroup(ctx, g))
	var ports []*ironwork.Port
	for _, mac := range []string{"52:54:00:00:00:01", "52:54:00:00:00:02"} {
		p := &ironwork.Port{NodeUUID: n.UUID, Address: mac}
		ok(t, e.store.CreatePort(ctx, p))
		ports = append(ports, p)
	}
	foreign := &ironwork.Port{NodeUUID: other.UUID, Address: "52:54:00:00:00:03"}
	ok(t, e.store.CreatePort(ctx, foreign))
	foreignGroup := &ironwork.Portgroup{NodeUUID: other.UUID, Address: "52:54:00:00:00:20", Name: "bond1"}
	ok(t, e.store.CreatePortgroup(ctx, foreignGroup))

	ok(t, withNode(t, e.c, n.UUID, func(task *conductor.Task) error {
		ps, err := task.Ports(ctx)
		if err != nil {
			return err
		}
		var macs []string
		for _, p := range ps {
			macs = append(macs, p.Address)
		}
		if diff := cmp.Diff([]string{"52:54:00:00:00:01", "52:54:00:00:00:02"}, macs); diff != "" {
			t.Errorf("ports of the task's node (-want +got):\n%s", diff)
		}
		gs, err := task.Portgroups(ctx)
		if err != nil {
			return err
		}
		if len(gs) != 1 || gs[0].UUID != g.UUID {
			t.Errorf("portgroups of the task's node: %v", gs)
		}
		if err := task.SavePort(ctx, ports[1].UUID, func(p *ironwork.Port) { p.InternalInfo = ironwork.JSONObject{conductor.TenantVIFKey: "vif-1"} }); err != nil {
			return err
		}
		if err := task.SavePortgroup(ctx, g.UUID, func(g *ironwork.Portgroup) { g.InternalInfo = ironwork.JSONObject{conductor.TenantVIFKey: "vif-2"} }); err != nil {
			return err
		}
		wantCode(t, task.SavePort(ctx, foreign.UUID, func(p *ironwork.Port) { p.InternalInfo = ironwork.JSONObject{"x": 1} }), ironwork.EINVALID)
		wantCode(t, task.SavePortgroup(ctx, foreignGroup.UUID, func(g *ironwork.Portgroup) { g.InternalInfo = ironwork.JSONObject{"x": 1} }), ironwork.EINVALID)
		wantCode(t, task.SavePort(ctx, "no-such-port", func(*ironwork.Port) {}), ironwork.ENOTFOUND)
		return nil
	}))
	p, err := e.store.GetPort(ctx, ports[1].UUID)
	ok(t, err)
	if p.InternalInfo[conductor.TenantVIFKey] != "vif-1" {
		t.Errorf("port internal_info %v", p.InternalInfo)
	}
	gg, err := e.store.GetPortgroup(ctx, g.UUID)
	ok(t, err)
	if gg.InternalInfo[conductor.TenantVIFKey] != "vif-2" {
		t.Errorf("portgroup internal_info %v", gg.InternalInfo)
	}
	fp, err := e.store.GetPort(ctx, foreign.UUID)
	ok(t, err)
	if len(fp.InternalInfo) != 0 {
		t.Errorf("a port of another node was changed: %v", fp.InternalInfo)
	}
	e.settled(t, n.UUID, ironwork.Available)
}
