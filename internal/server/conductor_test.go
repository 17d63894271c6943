package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/bmctest"
	"github.com/ironwork/ironwork/internal/server"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

// waitFor polls a node until cond holds or the deadline passes; it returns the last node seen.
func waitFor(t *testing.T, c *gophercloud.ServiceClient, id string, within time.Duration, cond func(*nodes.Node) bool) *nodes.Node {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		n, err := nodes.Get(context.Background(), c, id).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if cond(n) {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s not there within %s: provision_state %q target %q last_error %q", id, within,
				n.ProvisionState, n.TargetProvisionState, n.LastError)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func inState(s string) func(*nodes.Node) bool {
	return func(n *nodes.Node) bool { return n.ProvisionState == s }
}

// retryLocked retries a request while the node is locked. A node at rest is free (the worker
// frees the lock in the write that shows the state; TestStableStateMeansUnlocked), but other
// work (power sync, an agent's heartbeat) may hold it a moment, and Ironic's clients retry on
// 409 too.
func retryLocked(fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if !gophercloud.ResponseCodeIs(err, http.StatusConflict) || attempt >= 100 {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func provision(t *testing.T, c *gophercloud.ServiceClient, id string, opts nodes.ProvisionStateOpts) {
	t.Helper()
	if err := retryLocked(func() error { return nodes.ChangeProvisionState(context.Background(), c, id, opts).ExtractErr() }); err != nil {
		t.Fatalf("provision %s: %v", opts.Target, err)
	}
}

func TestConductorLifecycle(t *testing.T) {
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, target.DSN(t))
			c := gopherClient(t, srv, "1.87")
			ctx := context.Background()
			n, err := nodes.Create(ctx, c, nodes.CreateOpts{Name: "life-1", Driver: "fake-hardware"}).Extract()
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			provision(t, c, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage})
			got := waitFor(t, c, n.UUID, 5*time.Second, inState("manageable"))
			t.Logf("enroll -> manageable in %s", time.Since(start))
			if got.PowerState != "power off" {
				t.Errorf("verification did not record the power state: %q", got.PowerState)
			}

			start = time.Now()
			provision(t, c, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetProvide})
			waitFor(t, c, n.UUID, 10*time.Second, inState("available"))
			provision(t, c, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetActive, ConfigDrive: "H4sIAAAAAAAAAwMAAAAAAAAAAAA="})
			active := waitFor(t, c, n.UUID, 30*time.Second, inState("active"))
			t.Logf("manageable -> available -> active in %s", time.Since(start))
			if active.InstanceInfo["configdrive"] != "******" {
				t.Errorf("configdrive not stored or not masked: %v", active.InstanceInfo)
			}

			// Service with a step returns to active.
			provision(t, c, n.UUID, nodes.ProvisionStateOpts{Target: "service",
				ServiceSteps: []nodes.ServiceStep{{Interface: "deploy", Step: "noop"}}})
			waitFor(t, c, n.UUID, 10*time.Second, func(n *nodes.Node) bool { return n.ProvisionState == "active" && n.TargetProvisionState == "" })
			err = nodes.ChangeProvisionState(ctx, c, n.UUID, nodes.ProvisionStateOpts{Target: "service",
				ServiceSteps: []nodes.ServiceStep{{Interface: "deploy", Step: "no_such_step"}}}).ExtractErr()
			wantStatus(t, err, http.StatusBadRequest)

			// A verb the state does not allow.
			err = nodes.ChangeProvisionState(ctx, c, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetProvide}).ExtractErr()
			wantStatus(t, err, http.StatusBadRequest)

			provision(t, c, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetDeleted})
			back := waitFor(t, c, n.UUID, 30*time.Second, inState("available"))
			if back.InstanceInfo["configdrive"] != nil || back.TargetProvisionState != "" {
				t.Errorf("undeploy left instance data: %+v", back.InstanceInfo)
			}

			// Maintenance round trip, with its reason.
			if err := nodes.SetMaintenance(ctx, c, n.UUID, nodes.MaintenanceOpts{Reason: "replacing a DIMM"}).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			m, _ := nodes.Get(ctx, c, n.UUID).Extract()
			if !m.Maintenance || m.MaintenanceReason != "replacing a DIMM" {
				t.Fatalf("maintenance: %v %q", m.Maintenance, m.MaintenanceReason)
			}
			if err := nodes.UnsetMaintenance(ctx, c, n.UUID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			m, _ = nodes.Get(ctx, c, n.UUID).Extract()
			if m.Maintenance || m.MaintenanceReason != "" {
				t.Fatalf("maintenance not cleared: %v %q", m.Maintenance, m.MaintenanceReason)
			}

			// Power, boot device and validation.
			if err := retryLocked(func() error {
				return nodes.ChangePowerState(ctx, c, n.UUID, nodes.PowerStateOpts{Target: nodes.PowerOn}).ExtractErr()
			}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, c, n.UUID, 5*time.Second, func(n *nodes.Node) bool { return n.PowerState == "power on" && n.TargetPowerState == "" })
			if err := retryLocked(func() error {
				return nodes.SetBootDevice(ctx, c, n.UUID, nodes.BootDeviceOpts{BootDevice: "pxe", Persistent: true}).ExtractErr()
			}); err != nil {
				t.Fatal(err)
			}
			bd, err := nodes.GetBootDevice(ctx, c, n.UUID).Extract()
			if err != nil || bd.BootDevice != "pxe" || !bd.Persistent {
				t.Fatalf("boot device: %+v %v", bd, err)
			}
			v, err := nodes.Validate(ctx, c, n.UUID).Extract()
			if err != nil || !v.Power.Result || !v.Deploy.Result {
				t.Fatalf("validate: %+v %v", v, err)
			}

			// A locked node answers 409 with Ironic's message.
			if _, err := srv.Store().ReserveNode(ctx, n.UUID, "someone-else"); err != nil {
				t.Fatal(err)
			}
			err = nodes.ChangeProvisionState(ctx, c, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage}).ExtractErr()
			wantStatus(t, err, http.StatusConflict)
			if !strings.Contains(err.Error(), "is locked by host someone-else, please retry after the current operation is completed") {
				t.Errorf("locked message: %v", err)
			}
			if err := srv.Store().ReleaseNode(ctx, mustID(t, srv, n.UUID), "someone-else"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestConcurrentProvisionRequestsOneWins(t *testing.T) {
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, target.DSN(t))
			c := gopherClient(t, srv, "1.87")
			ctx := context.Background()
			n, err := nodes.Create(ctx, c, nodes.CreateOpts{Name: "race-1", Driver: "fake-hardware",
				DriverInfo: map[string]any{"fake_deploy_wait": true}}).Extract()
			if err != nil {
				t.Fatal(err)
			}
			provision(t, c, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage})
			waitFor(t, c, n.UUID, 5*time.Second, inState("manageable"))
			provision(t, c, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetProvide})
			waitFor(t, c, n.UUID, 5*time.Second, inState("available"))

			var won, conflict, refused, other atomic.Int64
			var wg sync.WaitGroup
			for range 100 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					err := nodes.ChangeProvisionState(ctx, c, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetActive}).ExtractErr()
					switch {
					case err == nil:
						won.Add(1)
					case gophercloud.ResponseCodeIs(err, http.StatusConflict):
						conflict.Add(1)
					case gophercloud.ResponseCodeIs(err, http.StatusBadRequest):
						refused.Add(1)
					default:
						other.Add(1)
						t.Log(err)
					}
				}()
			}
			wg.Wait()
			if won.Load() != 1 || other.Load() != 0 {
				t.Fatalf("100 concurrent deploys: %d accepted, %d locked, %d refused by state, %d other", won.Load(), conflict.Load(), refused.Load(), other.Load())
			}
			waitFor(t, c, n.UUID, 5*time.Second, inState("wait call-back"))
			hist, err := srv.Store().NodeHistory(ctx, mustID(t, srv, n.UUID))
			if err != nil {
				t.Fatal(err)
			}
			deploys := 0
			for _, e := range hist {
				if strings.Contains(e.Event, "(deploy)") {
					deploys++
				}
			}
			if deploys != 1 {
				t.Fatalf("history shows %d deploy transitions", deploys)
			}

			// 100 concurrent PATCHes of different keys on an idle node: none is lost.
			idle, err := nodes.Create(ctx, c, nodes.CreateOpts{Name: "patched", Driver: "fake-hardware"}).Extract()
			if err != nil {
				t.Fatal(err)
			}
			for i := range 100 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := nodes.Update(ctx, c, idle.UUID, nodes.UpdateOpts{nodes.UpdateOperation{Op: nodes.AddOp,
						Path: fmt.Sprintf("/extra/k%03d", i), Value: i}}).Extract()
					if err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			got, _ := nodes.Get(ctx, c, idle.UUID).Extract()
			if len(got.Extra) != 100 {
				t.Fatalf("after 100 concurrent patches extra has %d keys", len(got.Extra))
			}
		})
	}
}

func mustID(t *testing.T, srv *server.Server, uuid string) int64 {
	t.Helper()
	n, err := srv.Store().GetNode(context.Background(), uuid)
	if err != nil {
		t.Fatal(err)
	}
	return n.ID
}

func TestCallbackTimeoutPowerSyncAndTakeover(t *testing.T) {
	srv := startServer(t, sqlstoretest.Targets()[0].DSN(t), func(cfg *server.Config) {
		cfg.CallbackTimeout = server.Duration{Duration: 300 * time.Millisecond}
		cfg.TimeoutCheckInterval = server.Duration{Duration: 100 * time.Millisecond}
		cfg.PowerSyncInterval = server.Duration{Duration: 100 * time.Millisecond}
		cfg.HeartbeatInterval = server.Duration{Duration: 100 * time.Millisecond}
		cfg.HeartbeatTimeout = server.Duration{Duration: 500 * time.Millisecond}
	})
	c := gopherClient(t, srv, "1.87")
	ctx := context.Background()

	// A node that never calls back fails wait call-back after the timeout.
	n, err := nodes.Create(ctx, c, nodes.CreateOpts{Name: "waiter", Driver: "fake-hardware",
		DriverInfo: map[string]any{"fake_deploy_wait": true}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	provision(t, c, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage})
	waitFor(t, c, n.UUID, 5*time.Second, inState("manageable"))
	provision(t, c, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetProvide})
	waitFor(t, c, n.UUID, 5*time.Second, inState("available"))
	provision(t, c, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetActive})
	failed := waitFor(t, c, n.UUID, 10*time.Second, inState("deploy failed"))
	if !strings.Contains(failed.LastError, "Timeout reached while waiting for callback") {
		t.Fatalf("last_error: %q", failed.LastError)
	}

	// A node whose BMC stops answering goes into maintenance with fault "power failure", and
	// comes out when it answers again.
	p, err := nodes.Create(ctx, c, nodes.CreateOpts{Name: "flaky", Driver: "fake-hardware"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	provision(t, c, p.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage})
	waitFor(t, c, p.UUID, 5*time.Second, inState("manageable"))
	if _, err := nodes.Update(ctx, c, p.UUID, nodes.UpdateOpts{nodes.UpdateOperation{Op: nodes.AddOp, Path: "/driver_info/fake_power_fail", Value: true}}).Extract(); err != nil {
		t.Fatal(err)
	}
	broken := waitFor(t, c, p.UUID, 10*time.Second, func(n *nodes.Node) bool { return n.Maintenance })
	if broken.Fault != "power failure" || !strings.Contains(broken.MaintenanceReason, "max retries exceeded") {
		t.Fatalf("fault %q reason %q", broken.Fault, broken.MaintenanceReason)
	}
	if _, err := nodes.Update(ctx, c, p.UUID, nodes.UpdateOpts{nodes.UpdateOperation{Op: nodes.RemoveOp, Path: "/driver_info/fake_power_fail"}}).Extract(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c, p.UUID, 10*time.Second, func(n *nodes.Node) bool { return !n.Maintenance && n.Fault == "" })

	// A conductor that dies mid-deploy: its lock is freed and the node fails, within two
	// heartbeat timeouts.
	d, err := nodes.Create(ctx, c, nodes.CreateOpts{Name: "orphan", Driver: "fake-hardware"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	st := srv.Store()
	if err := st.RegisterConductor(ctx, &ironwork.Conductor{Hostname: "dead-conductor", Drivers: []string{"fake-hardware"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpdateNode(ctx, d.UUID, func(n *ironwork.Node) error {
		n.ProvisionState, n.TargetProvisionState, n.Reservation = ironwork.Deploying, ironwork.Active, "dead-conductor"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// The survivor locks the node to fail it, then lets go: wait for both.
	orphan := waitFor(t, c, d.UUID, 5*time.Second, func(n *nodes.Node) bool {
		return n.ProvisionState == "deploy failed" && n.Reservation == ""
	})
	if !strings.Contains(orphan.LastError, "conductor working on node") {
		t.Fatalf("orphan: reservation %q last_error %q", orphan.Reservation, orphan.LastError)
	}
	t.Logf("takeover of a dead conductor's node: %s", time.Since(start).Round(time.Millisecond))
}

func TestWorkerPoolAndTakeOverOfDeployedNodes(t *testing.T) {
	srv := startServer(t, sqlstoretest.Targets()[0].DSN(t), func(cfg *server.Config) {
		cfg.Workers = 1
		no := false
		cfg.AutomatedClean = &no
	})
	c := gopherClient(t, srv, "1.87")
	ctx := context.Background()
	var ids []string
	for i, delay := range []float64{0, 3, 0} {
		n, err := nodes.Create(ctx, c, nodes.CreateOpts{Name: fmt.Sprintf("pool-%d", i), Driver: "fake-hardware",
			DriverInfo: map[string]any{"fake_deploy_delay": delay}}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		provision(t, c, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage})
		waitFor(t, c, n.UUID, 5*time.Second, inState("manageable"))
		provision(t, c, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetProvide})
		waitFor(t, c, n.UUID, 5*time.Second, inState("available"))
		ids = append(ids, n.UUID)
	}
	// The only worker is busy with a slow deploy: the next request gets 503 and the node stays.
	provision(t, c, ids[1], nodes.ProvisionStateOpts{Target: nodes.TargetActive})
	err := retryLocked(func() error {
		return nodes.ChangeProvisionState(ctx, c, ids[2], nodes.ProvisionStateOpts{Target: nodes.TargetActive}).ExtractErr()
	})
	wantStatus(t, err, http.StatusServiceUnavailable)
	if n, _ := nodes.Get(ctx, c, ids[2]).Extract(); n.ProvisionState != "available" || n.Reservation != "" {
		t.Fatalf("refused node moved: %s %q", n.ProvisionState, n.Reservation)
	}
	waitFor(t, c, ids[1], 10*time.Second, inState("active"))

	// A deployed node whose affinity names another conductor is taken over.
	provision(t, c, ids[0], nodes.ProvisionStateOpts{Target: nodes.TargetActive})
	waitFor(t, c, ids[0], 5*time.Second, inState("active"))
	st := srv.Store()
	me, err := st.GetConductor(ctx, "test-conductor")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := st.GetNode(ctx, ids[0])
	if n.ConductorAffinity != me.ID {
		t.Fatalf("affinity after deploy = %d, want %d", n.ConductorAffinity, me.ID)
	}
	if _, err := st.UpdateNode(ctx, ids[0], func(n *ironwork.Node) error { n.ConductorAffinity = me.ID + 100; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := srv.Conductor().TakeOverActive(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := st.GetNode(ctx, ids[0]); n.ConductorAffinity != me.ID || n.Reservation != "" {
		t.Fatalf("after take over: affinity %d reservation %q", n.ConductorAffinity, n.Reservation)
	}
}

// TestRedfishNodeAgainstTheDMTFMockup enrols a redfish node whose BMC is DMTF's mockup and
// drives it through the API: verification reads its power state, power and boot device
// requests reach the BMC.
func TestRedfishNodeAgainstTheDMTFMockup(t *testing.T) {
	bmc := bmctest.NewRedfish(t, bmctest.MockupDir(t, "../../.."))
	srv := startServer(t, sqlstoretest.Targets()[0].DSN(t))
	c := gopherClient(t, srv, "1.87")
	ctx := context.Background()
	n, err := nodes.Create(ctx, c, nodes.CreateOpts{Name: "rf-1", Driver: "redfish", DriverInfo: map[string]any{
		"redfish_address": bmc.URL, "redfish_system_id": "/redfish/v1/Systems/437XR1138R2",
		"redfish_username": bmc.User, "redfish_password": bmc.Password}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if n.PowerInterface != "redfish" || n.DriverInfo["redfish_password"] != "******" {
		t.Fatalf("redfish node: power %q driver_info %v", n.PowerInterface, n.DriverInfo)
	}
	provision(t, c, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage})
	m := waitFor(t, c, n.UUID, 10*time.Second, inState("manageable"))
	if m.PowerState != "power on" {
		t.Fatalf("power state read from the BMC: %q", m.PowerState)
	}
	if err := retryLocked(func() error {
		return nodes.ChangePowerState(ctx, c, n.UUID, nodes.PowerStateOpts{Target: nodes.PowerOff}).ExtractErr()
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c, n.UUID, 10*time.Second, func(n *nodes.Node) bool { return n.PowerState == "power off" && n.TargetPowerState == "" })
	if got := bmc.Resource("/redfish/v1/Systems/437XR1138R2")["PowerState"]; got != "Off" {
		t.Fatalf("BMC power state: %v", got)
	}
	if err := retryLocked(func() error {
		return nodes.SetBootDevice(ctx, c, n.UUID, nodes.BootDeviceOpts{BootDevice: "pxe", Persistent: true}).ExtractErr()
	}); err != nil {
		t.Fatal(err)
	}
	if boot := bmc.Resource("/redfish/v1/Systems/437XR1138R2")["Boot"].(map[string]any); boot["BootSourceOverrideTarget"] != "Pxe" || boot["BootSourceOverrideEnabled"] != "Continuous" {
		t.Fatalf("BMC boot override: %v", boot)
	}

	// A wrong password fails verification with the BMC's answer in last_error.
	bad, err := nodes.Create(ctx, c, nodes.CreateOpts{Name: "rf-bad", Driver: "redfish", DriverInfo: map[string]any{
		"redfish_address": bmc.URL, "redfish_username": bmc.User, "redfish_password": "wrong"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	provision(t, c, bad.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage})
	failed := waitFor(t, c, bad.UUID, 10*time.Second, inState("enroll"))
	if !strings.Contains(failed.LastError, "401") {
		t.Fatalf("last_error of a wrong password: %q", failed.LastError)
	}
}

// TestIPMINodeAgainstOpenIPMI enrols an ipmi node whose BMC is OpenIPMI's simulator and
// verifies and powers it through the API.
func TestIPMINodeAgainstOpenIPMI(t *testing.T) {
	sim := bmctest.NewIPMISim(t)
	srv := startServer(t, sqlstoretest.Targets()[0].DSN(t))
	c := gopherClient(t, srv, "1.87")
	ctx := context.Background()
	n, err := nodes.Create(ctx, c, nodes.CreateOpts{Name: "ipmi-1", Driver: "ipmi", DriverInfo: map[string]any{
		"ipmi_address": "127.0.0.1", "ipmi_port": sim.Port, "ipmi_username": sim.User,
		"ipmi_password": sim.Password, "ipmi_cipher_suite": "3"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	provision(t, c, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage})
	m := waitFor(t, c, n.UUID, 10*time.Second, inState("manageable"))
	if m.PowerState != "power off" {
		t.Fatalf("power state read over IPMI: %q", m.PowerState)
	}
	if err := retryLocked(func() error {
		return nodes.ChangePowerState(ctx, c, n.UUID, nodes.PowerStateOpts{Target: nodes.PowerOn}).ExtractErr()
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c, n.UUID, 15*time.Second, func(n *nodes.Node) bool { return n.PowerState == "power on" && n.TargetPowerState == "" })
	if sim.Power() != "1" {
		t.Fatalf("simulator power: %s", sim.Power())
	}
}
