package conductor_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

func shortCallback(c *conductor.Config) {
	c.CallbackTimeout, c.Inspection.WaitTimeout, c.RescueCallbackTimeout = time.Minute, time.Minute, time.Minute
}

func TestCallbackTimeouts(t *testing.T) {
	t.Parallel()
	cases := append([]waitCase(nil), waitCases...)
	cases = append(cases,
		waitCase{name: "inspect wait", wait: ironwork.InspectWait, failed: ironwork.InspectFailed,
			setup: func(t *testing.T, e *env) *ironwork.Node {
				e.rec.set(func(r *recorder) { r.inspectWait = true })
				n := e.node(t, func(n *ironwork.Node) { n.ProvisionState = ironwork.Manageable })
				ok(t, provision(t, e.c, n.UUID, "inspect"))
				return n
			}},
		waitCase{name: "rescue wait", wait: ironwork.RescueWait, failed: ironwork.RescueFailed,
			setup: func(t *testing.T, e *env) *ironwork.Node {
				e.rec.set(func(r *recorder) { r.rescueWait = true })
				n := e.node(t, func(n *ironwork.Node) { n.ProvisionState = ironwork.Active })
				ok(t, provision(t, e.c, n.UUID, "rescue", withRescuePassword("pw")))
				return n
			}},
	)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, shortCallback)
			n := tc.setup(t, e)
			e.settled(t, n.UUID, tc.wait)
			// A node that waits less than the timeout stays.
			ok(t, checkTimeouts(t, e.c))
			e.settled(t, n.UUID, tc.wait)
			// Locked by someone else: skipped, even when late.
			old := time.Now().Add(-time.Hour).UTC()
			e.update(t, n.UUID, func(n *ironwork.Node) { n.ProvisionUpdatedAt = &old })
			locked, err := e.store.ReserveNode(context.Background(), n.UUID, "other")
			ok(t, err)
			ok(t, checkTimeouts(t, e.c))
			if got := e.get(t, n.UUID); got.ProvisionState != tc.wait {
				t.Fatalf("a locked node timed out: state %q", got.ProvisionState)
			}
			ok(t, e.store.ReleaseNode(context.Background(), locked.ID, "other"))
			// Late and free: failed, steps cleared, unlocked.
			ok(t, checkTimeouts(t, e.c))
			got := e.settled(t, n.UUID, tc.failed)
			if tc.wait == ironwork.InspectWait {
				// Ironic's own words for inspection; the node is powered off too.
				if !strings.Contains(got.LastError, "Timeout reached while inspecting the node") || got.PowerState != ironwork.PowerOff {
					t.Errorf("inspection timeout: last_error %q, power %q", got.LastError, got.PowerState)
				}
			} else if tc.wait == ironwork.RescueWait {
				// Ironic's own words for the rescue callback timeout, and its rescuing error
				// handler: powered off, the password's hash forgotten.
				if !strings.Contains(got.LastError, "Timeout reached while waiting for rescue ramdisk callback for node "+n.UUID) {
					t.Errorf("last_error %q is not the rescue callback timeout", got.LastError)
				}
				if _, ok := got.InstanceInfo[conductor.RescuePasswordHashKey]; ok || e.rec.hardwarePower() != ironwork.PowerOff {
					t.Errorf("after the rescue timeout: instance_info %v, hardware power %s", got.InstanceInfo, e.rec.hardwarePower())
				}
			} else if !strings.Contains(got.LastError, "Timeout reached while waiting for callback") || !strings.Contains(got.LastError, string(tc.wait)) {
				t.Errorf("last_error %q does not say which wait timed out", got.LastError)
			}
			if len(got.CleanStep)+len(got.DeployStep)+len(got.ServiceStep) != 0 {
				t.Errorf("step fields kept after a timeout: %v %v %v", got.CleanStep, got.DeployStep, got.ServiceStep)
			}
			if tc.nextStep != "" && strings.Contains(strings.Join(stepCalls(e.rec), " "), tc.nextStep) {
				t.Errorf("%s ran after the timeout", tc.nextStep)
			}
		})
	}
}

func TestCallbackTimeoutSkipsOtherConductorsNodes(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	e1 := newEnvOn(t, store, "c1", nil, shortCallback)
	e2 := newEnvOn(t, store, "c2", nil, shortCallback)
	refreshRing(t, e1.c, store)
	refreshRing(t, e2.c, store)
	old := time.Now().Add(-time.Hour).UTC()
	n := nodeOwnedBy(t, e1, "c2", func(n *ironwork.Node) { n.ProvisionState, n.ProvisionUpdatedAt = ironwork.CleanWait, &old })
	ok(t, checkTimeouts(t, e1.c))
	e1.settled(t, n.UUID, ironwork.CleanWait)
	ok(t, checkTimeouts(t, e2.c))
	e2.settled(t, n.UUID, ironwork.CleanFailed)
}

// nodeOwnedBy creates nodes until the ring of e's conductor gives one to host.
func nodeOwnedBy(t *testing.T, e *env, host string, fn func(n *ironwork.Node)) *ironwork.Node {
	t.Helper()
	for range 200 {
		n := e.node(t, fn)
		if e.c.Ring().ConductorFor(n) == host {
			return n
		}
		ok(t, e.store.DeleteNode(context.Background(), n.UUID, nil))
	}
	t.Fatalf("no node of 200 maps to %s", host)
	return nil
}

func TestPowerSyncDrift(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		force      bool
		record     ironwork.PowerState
		hardware   ironwork.PowerState
		wantRecord ironwork.PowerState
		wantHW     ironwork.PowerState
		wantSet    []string
	}{
		{"in step", true, ironwork.PowerOn, ironwork.PowerOn, ironwork.PowerOn, ironwork.PowerOn, nil},
		{"drift, hardware set back to the record", true, ironwork.PowerOn, ironwork.PowerOff, ironwork.PowerOn, ironwork.PowerOn, []string{"power.SetPowerState(power on)"}},
		{"drift, record follows the hardware", false, ironwork.PowerOn, ironwork.PowerOff, ironwork.PowerOff, ironwork.PowerOff, nil},
		{"no record yet", true, "", ironwork.PowerOn, ironwork.PowerOn, ironwork.PowerOn, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(c *conductor.Config) { c.ForcePowerStateDuringSync = tc.force })
			e.rec.set(func(r *recorder) { r.power = tc.hardware })
			n := e.node(t, func(n *ironwork.Node) { n.PowerState = tc.record })
			ok(t, syncPower(t, e.c))
			got := e.settled(t, n.UUID, ironwork.Available)
			if got.PowerState != tc.wantRecord || e.rec.hardwarePower() != tc.wantHW {
				t.Errorf("after sync: record %q hardware %q, want record %q hardware %q", got.PowerState, e.rec.hardwarePower(), tc.wantRecord, tc.wantHW)
			}
			if diff := cmp.Diff(tc.wantSet, e.rec.Calls("power.SetPowerState")); diff != "" {
				t.Errorf("power changes (-want +got):\n%s", diff)
			}
			if got.Maintenance {
				t.Errorf("node went into maintenance: %q", got.MaintenanceReason)
			}
		})
	}
}

func TestPowerSyncSkips(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.rec.set(func(r *recorder) { r.power = ironwork.PowerOn })
	skipped := []*ironwork.Node{
		e.node(t, func(n *ironwork.Node) { n.Maintenance, n.MaintenanceReason = true, "by hand" }),
		e.node(t, func(n *ironwork.Node) { n.ProvisionState = ironwork.CleanWait }),
		e.node(t, func(n *ironwork.Node) { n.ProvisionState = ironwork.Deploying }),
		e.node(t, nil),
	}
	locked, err := e.store.ReserveNode(context.Background(), skipped[3].UUID, "other")
	ok(t, err)
	ok(t, syncPower(t, e.c))
	ok(t, e.store.ReleaseNode(context.Background(), locked.ID, "other"))
	if calls := e.rec.Calls("power."); len(calls) != 0 {
		t.Errorf("power sync touched nodes it must skip: %v", calls)
	}
	for _, n := range skipped {
		if got := e.get(t, n.UUID); got.PowerState != ironwork.PowerOff {
			t.Errorf("node in %s (maintenance %t): power record changed to %q", got.ProvisionState, got.Maintenance, got.PowerState)
		}
	}
}

func TestPowerSyncFailuresLeadToMaintenance(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		fail string
	}{
		{"BMC does not answer", "power.PowerState"},
		{"BMC refuses the change", "power.SetPowerState(power on)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(c *conductor.Config) { c.PowerSyncMaxRetries = 3 })
			n := e.node(t, func(n *ironwork.Node) { n.PowerState = ironwork.PowerOn })
			e.rec.failOn(tc.fail)
			for i := 1; i <= 2; i++ {
				ok(t, syncPower(t, e.c))
				if got := e.settled(t, n.UUID, ironwork.Available); got.Maintenance {
					t.Fatalf("maintenance after %d failed syncs of 3", i)
				}
			}
			ok(t, syncPower(t, e.c))
			got := e.settled(t, n.UUID, ironwork.Available)
			if !got.Maintenance || got.Fault != "power failure" || !strings.Contains(got.MaintenanceReason, "max retries exceeded") || got.LastError == "" {
				t.Fatalf("after 3 failed syncs: maintenance %t fault %q reason %q last_error %q", got.Maintenance, got.Fault, got.MaintenanceReason, got.LastError)
			}
			// The BMC answers again: the node comes out of maintenance by itself.
			e.rec.set(func(r *recorder) { delete(r.fail, tc.fail); r.power = ironwork.PowerOff })
			ok(t, syncPower(t, e.c))
			got = e.settled(t, n.UUID, ironwork.Available)
			if got.Maintenance || got.Fault != "" || got.MaintenanceReason != "" || got.PowerState != ironwork.PowerOff {
				t.Errorf("after recovery: maintenance %t fault %q reason %q power %q", got.Maintenance, got.Fault, got.MaintenanceReason, got.PowerState)
			}
		})
	}
}

func TestPowerSyncFailureCountResets(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		reset func(t *testing.T, e *env, n *ironwork.Node)
	}{
		{"by a successful sync", func(t *testing.T, e *env, _ *ironwork.Node) {
			e.rec.set(func(r *recorder) { delete(r.fail, "power.PowerState") })
			ok(t, syncPower(t, e.c))
			e.rec.failOn("power.PowerState")
		}},
		{"by maintenance off", func(t *testing.T, e *env, n *ironwork.Node) {
			ok(t, setMaintenance(t, e.c, n.UUID, false, ""))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(c *conductor.Config) { c.PowerSyncMaxRetries = 3 })
			n := e.node(t, nil)
			e.rec.failOn("power.PowerState")
			ok(t, syncPower(t, e.c))
			ok(t, syncPower(t, e.c))
			tc.reset(t, e, n)
			ok(t, syncPower(t, e.c))
			ok(t, syncPower(t, e.c))
			if got := e.settled(t, n.UUID, ironwork.Available); got.Maintenance {
				t.Errorf("maintenance after 2+2 failures with a reset between: %q", got.MaintenanceReason)
			}
		})
	}
}

// twoConductors starts c1 and c2 on one store, each with a ring that knows both.
func twoConductors(t *testing.T) (e1, e2 *env) {
	store := newStore(t)
	e1 = newEnvOn(t, store, "c1", nil)
	e2 = newEnvOn(t, store, "c2", nil)
	refreshRing(t, e1.c, store)
	refreshRing(t, e2.c, store)
	return e1, e2
}

func TestTakeOverActive(t *testing.T) {
	t.Parallel()
	e1, e2 := twoConductors(t)
	c2 := e1.conductorID(t, "c2")
	n := nodeOwnedBy(t, e1, "c2", func(n *ironwork.Node) { n.ProvisionState, n.ConductorAffinity = ironwork.Active, c2 })
	// While c2 lives the ring gives the node to c2, which already prepared it.
	ok(t, takeOverActive(t, e1.c))
	ok(t, takeOverActive(t, e2.c))
	if calls := append(e1.rec.Calls("boot.TakeOver"), e2.rec.Calls("boot.TakeOver")...); len(calls) != 0 {
		t.Fatalf("takeover of a node its owner prepared: %v", calls)
	}
	// c2 leaves: the ring moves the node to c1, whose boot interface adopts it, once.
	ok(t, e1.store.UnregisterConductor(context.Background(), "c2"))
	refreshRing(t, e1.c, e1.store)
	if owner := e1.c.Ring().ConductorFor(n); owner != "c1" {
		t.Fatalf("ring gives the node to %q after c2 left, want c1", owner)
	}
	e1.rec.failOn("boot.TakeOver")
	ok(t, takeOverActive(t, e1.c))
	if got := e1.settled(t, n.UUID, ironwork.Active); got.ConductorAffinity != c2 {
		t.Errorf("affinity moved to %d though the takeover failed", got.ConductorAffinity)
	}
	e1.rec.set(func(r *recorder) { delete(r.fail, "boot.TakeOver") })
	ok(t, takeOverActive(t, e1.c))
	ok(t, takeOverActive(t, e1.c))
	got := e1.settled(t, n.UUID, ironwork.Active)
	if want := e1.conductorID(t, "c1"); got.ConductorAffinity != want {
		t.Errorf("affinity %d after the takeover, want c1's %d", got.ConductorAffinity, want)
	}
	if diff := cmp.Diff([]string{"boot.TakeOver", "boot.TakeOver"}, e1.rec.Calls("boot.TakeOver")); diff != "" {
		t.Errorf("takeover calls, one failed and one done (-want +got):\n%s", diff)
	}
}

// TestTakeOverLooksWhenTheRingChanges: the take-over loop looks at every deployed node when
// the ring's members changed, again after a look that left a node it could not adopt, and
// every sync_local_state_interval; on an unchanged ring within that interval it looks only at
// the deployed nodes without affinity.
func TestTakeOverLooksWhenTheRingChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := newStore(t)
	e1 := newEnvOn(t, store, "c1", nil, func(cfg *conductor.Config) { cfg.SyncLocalStateInterval = time.Hour })
	newEnvOn(t, store, "c2", nil)
	refreshRing(t, e1.c, store)
	c2 := e1.conductorID(t, "c2")
	affinity := func(n *ironwork.Node) int64 { return e1.get(t, n.UUID).ConductorAffinity }
	ok(t, takeOvers(t, e1.c)) // the first look
	// A deployed node c1 should adopt appears (deployed by c2 while its ring lagged): the ring
	// did not change and the interval has not passed, so the loop does not look.
	n1 := nodeOwnedBy(t, e1, "c1", func(n *ironwork.Node) { n.ProvisionState, n.ConductorAffinity = ironwork.Active, c2 })
	ok(t, takeOvers(t, e1.c))
	if got := affinity(n1); got != c2 || len(e1.rec.Calls("boot.TakeOver")) != 0 {
		t.Fatalf("adopted on an unchanged ring: affinity %d, calls %v", got, e1.rec.Calls("boot.TakeOver"))
	}
	// A deployed node nobody adopted (affinity unset) is adopted at the next pass all the same.
	orphan := nodeOwnedBy(t, e1, "c1", func(n *ironwork.Node) { n.ProvisionState = ironwork.Active })
	ok(t, takeOvers(t, e1.c))
	if got, want := affinity(orphan), e1.conductorID(t, "c1"); got != want || affinity(n1) != c2 {
		t.Fatalf("affinity %d of a node without one after a pass, want c1's %d (and c2's kept by the other: %d)", got, want, affinity(n1))
	}
	// c2 leaves: the next pass looks at every node and adopts n1.
	ok(t, store.UnregisterConductor(ctx, "c2"))
	refreshRing(t, e1.c, store)
	ok(t, takeOvers(t, e1.c))
	if got, want := affinity(n1), e1.conductorID(t, "c1"); got != want {
		t.Fatalf("affinity %d after the ring changed, want c1's %d", got, want)
	}
	// A refresh that finds the same members is no change.
	refreshRing(t, e1.c, store)
	n2 := nodeOwnedBy(t, e1, "c1", func(n *ironwork.Node) { n.ProvisionState, n.ConductorAffinity = ironwork.Active, c2 })
	ok(t, takeOvers(t, e1.c))
	if got := affinity(n2); got != c2 {
		t.Fatalf("adopted after a refresh that changed nothing: affinity %d", got)
	}
	// c3 joins; the look fails to adopt n2, so the next pass looks again, ring unchanged.
	ok(t, store.RegisterConductor(ctx, &ironwork.Conductor{Hostname: "c3", Drivers: []string{"fake-hardware"}}))
	refreshRing(t, e1.c, store)
	n2 = nodeOwnedBy(t, e1, "c1", func(n *ironwork.Node) { n.ProvisionState, n.ConductorAffinity = ironwork.Active, c2 })
	e1.rec.failOn("boot.TakeOver")
	ok(t, takeOvers(t, e1.c))
	if got := affinity(n2); got != c2 {
		t.Fatalf("affinity %d though the takeover failed", got)
	}
	e1.rec.set(func(r *recorder) { delete(r.fail, "boot.TakeOver") })
	ok(t, takeOvers(t, e1.c))
	if got, want := affinity(n2), e1.conductorID(t, "c1"); got != want {
		t.Fatalf("affinity %d after the retry, want c1's %d", got, want)
	}
	// c4 joins; the look finds n3 locked (busy on c3), so the next pass looks again.
	ok(t, store.RegisterConductor(ctx, &ironwork.Conductor{Hostname: "c4", Drivers: []string{"fake-hardware"}}))
	refreshRing(t, e1.c, store)
	n3 := nodeOwnedBy(t, e1, "c1", func(n *ironwork.Node) { n.ProvisionState, n.ConductorAffinity = ironwork.Active, c2 })
	locked, err := store.ReserveNode(ctx, n3.UUID, "c3") // a live conductor: its lock stays
	ok(t, err)
	ok(t, takeOvers(t, e1.c))
	if got := affinity(n3); got != c2 {
		t.Fatalf("affinity %d of a locked node", got)
	}
	ok(t, store.ReleaseNode(ctx, locked.ID, "c3"))
	ok(t, takeOvers(t, e1.c))
	if got, want := affinity(n3), e1.conductorID(t, "c1"); got != want {
		t.Fatalf("affinity %d once the lock was released, want c1's %d", got, want)
	}

	// With an interval that has always passed, every pass looks.
	e := newEnv(t, func(cfg *conductor.Config) { cfg.SyncLocalStateInterval = time.Nanosecond })
	ok(t, takeOvers(t, e.c))
	n := e.node(t, func(n *ironwork.Node) { n.ProvisionState, n.ConductorAffinity = ironwork.Active, 12345 })
	ok(t, takeOvers(t, e.c))
	if got, want := e.get(t, n.UUID).ConductorAffinity, e.conductorID(t, "c1"); got != want {
		t.Errorf("affinity %d after the interval passed, want %d", got, want)
	}
}

func TestTakeOverDead(t *testing.T) {
	t.Parallel()
	e1, _ := twoConductors(t)
	ctx := context.Background()
	working := e1.node(t, func(n *ironwork.Node) {
		n.ProvisionState, n.TargetPowerState = ironwork.Deploying, ironwork.PowerOn
		n.DeployStep = ironwork.JSONObject{"step": "deploy", "interface": "deploy"}
	})
	resting := e1.node(t, func(n *ironwork.Node) { n.ProvisionState = ironwork.Active })
	for _, n := range []*ironwork.Node{working, resting} {
		_, err := e1.store.ReserveNode(ctx, n.UUID, "c2")
		ok(t, err)
	}
	// c2 lives: its locks stay.
	ok(t, takeOverDead(t, e1.c))
	if got := e1.get(t, working.UUID); got.Reservation != "c2" {
		t.Fatalf("the lock of a live conductor was taken: %q", got.Reservation)
	}
	ok(t, e1.store.UnregisterConductor(ctx, "c2"))
	ok(t, takeOverDead(t, e1.c))
	got := e1.settled(t, working.UUID, ironwork.DeployFailed)
	if !strings.Contains(got.LastError, "stopped while the node was in state \"deploying\"") {
		t.Errorf("last_error %q does not say the conductor stopped", got.LastError)
	}
	if len(got.DeployStep) != 0 || got.TargetPowerState != "" {
		t.Errorf("deploy_step %v, target power %q kept after the takeover", got.DeployStep, got.TargetPowerState)
	}
	if got := e1.settled(t, resting.UUID, ironwork.Active); got.LastError != "" {
		t.Errorf("a resting node got last_error %q", got.LastError)
	}
}

func TestStartRecoversOwnStaleLocks(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	var cleaning, available *ironwork.Node
	e := newEnvOn(t, store, "c1", func(e *env) {
		ctx := context.Background()
		cleaning = e.node(t, func(n *ironwork.Node) { n.ProvisionState = ironwork.Cleaning })
		available = e.node(t, nil)
		for _, n := range []*ironwork.Node{cleaning, available} {
			_, err := store.ReserveNode(ctx, n.UUID, "c1")
			ok(t, err)
		}
	})
	if got := e.settled(t, cleaning.UUID, ironwork.CleanFailed); got.LastError == "" {
		t.Errorf("no last_error on a node whose cleaning was lost")
	}
	e.settled(t, available.UUID, ironwork.Available)
}

func TestStartUnregistered(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	cfg := conductor.Defaults()
	cfg.Hostname = "ghost"
	c := conductor.New(cfg, store, ironwork.DefaultDriverConfig(), conductor.Registry{}, nil)
	defer c.Stop()
	wantCode(t, start(t, c), ironwork.ENOTFOUND)
	if c.Hostname() != "ghost" {
		t.Errorf("hostname %q", c.Hostname())
	}
}

// TestPeriodicTasksRun starts a conductor whose periodic tasks fire every millisecond and
// waits (bounded by the test's deadline) until the callback timeout task has failed a late
// node and the power sync has recorded a drifted state, without asserting any timing.
func TestPeriodicTasksRun(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	var late, drift *ironwork.Node
	e := newEnvOn(t, store, "c1", func(e *env) {
		old := time.Now().Add(-time.Hour).UTC()
		// Both nodes share the recorder's one "hardware": the late node's record agrees with
		// it, so that syncing it once it failed does not power the hardware off.
		late = e.node(t, func(n *ironwork.Node) {
			n.ProvisionState, n.ProvisionUpdatedAt, n.PowerState = ironwork.CleanWait, &old, ironwork.PowerOn
		})
		drift = e.node(t, func(n *ironwork.Node) { n.PowerState = "" })
		e.rec.set(func(r *recorder) { r.power = ironwork.PowerOn })
	}, shortCallback, func(c *conductor.Config) {
		c.PowerSyncInterval, c.TimeoutCheckInterval, c.HeartbeatInterval = time.Millisecond, time.Millisecond, time.Millisecond
	})
	deadline, hasDeadline := t.Deadline()
	for i := 0; ; i++ {
		l, d := e.get(t, late.UUID), e.get(t, drift.UUID)
		if l.ProvisionState == ironwork.CleanFailed && d.PowerState == ironwork.PowerOn {
			t.Logf("periodic tasks did their work after %d polls", i)
			return
		}
		if i > 20000 || (hasDeadline && time.Until(deadline) < 5*time.Second) {
			t.Fatalf("periodic tasks did not run: late node %q, drifted node power %q", l.ProvisionState, d.PowerState)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRestartAfterStopMidWork stops a conductor while a clean step runs (its worker gives up
// and releases the lock, leaving the node in "cleaning") and starts it again: the restarted
// conductor fails the node instead of leaving it stuck where no verb applies.
func TestRestartAfterStopMidWork(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	e := newEnvOn(t, store, "c1", nil)
	offerSteps(e)
	gate, entered := make(chan struct{}), make(chan string, 1)
	e.rec.set(func(r *recorder) { r.gate, r.entered = gate, entered })
	n := e.node(t, func(n *ironwork.Node) { n.ProvisionState = ironwork.Manageable })
	ok(t, provision(t, e.c, n.UUID, "provide"))
	<-entered
	e.c.Stop()
	stopped := e.get(t, n.UUID)
	if stopped.ProvisionState != ironwork.Cleaning || stopped.Reservation != "" {
		t.Fatalf("after stop: state %q lock %q, want cleaning and unlocked", stopped.ProvisionState, stopped.Reservation)
	}
	// Another conductor's node in a working state, locked by it, is left alone.
	busy := e.node(t, func(n *ironwork.Node) { n.ProvisionState = ironwork.Deploying })
	locked, err := store.ReserveNode(context.Background(), busy.UUID, "c2")
	ok(t, err)
	e2 := newEnvOn(t, store, "c1", nil)
	got := e2.settled(t, n.UUID, ironwork.CleanFailed)
	if !strings.Contains(got.LastError, "stopped while the node was in state \"cleaning\"") {
		t.Errorf("last_error %q does not say the conductor stopped", got.LastError)
	}
	if got := e2.get(t, busy.UUID); got.ProvisionState != ironwork.Deploying || got.Reservation != "c2" {
		t.Errorf("a node locked by a live conductor was touched: state %q lock %q", got.ProvisionState, got.Reservation)
	}
	ok(t, store.ReleaseNode(context.Background(), locked.ID, "c2"))
}

// TestBootRetry: with BootRetryTimeout, a node in deploy, clean or rescue wait whose agent has
// not called back for that long is powered off, set to boot from the network again and powered
// on, once per timeout, staying in its wait state; a node whose agent heartbeats, or in
// maintenance, is left alone; past CallbackTimeout the node fails as before; without the
// setting nothing is retried.
func TestBootRetry(t *testing.T) {
	t.Parallel()
	cases := []waitCase{waitCases[0], waitCases[1], {name: "rescue wait", wait: ironwork.RescueWait,
		setup: func(t *testing.T, e *env) *ironwork.Node {
			e.rec.set(func(r *recorder) { r.rescueWait = true })
			n := e.node(t, func(n *ironwork.Node) { n.ProvisionState = ironwork.Active })
			ok(t, provision(t, e.c, n.UUID, "rescue", withRescuePassword("pw")))
			return n
		}}}
	retried := []string{"power.SetPowerState(power off)", "boot.RetryRamdiskBoot", "power.SetPowerState(power on)"}
	ago := func(d time.Duration) string { return time.Now().Add(-d).UTC().Format(time.RFC3339) }
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(c *conductor.Config) { c.BootRetryTimeout = 10 * time.Minute })
			n := tc.setup(t, e)
			e.settled(t, n.UUID, tc.wait)
			calls := func() []string { return e.rec.Calls("power.SetPowerState", "boot.RetryRamdiskBoot") }
			before := len(calls())
			newCalls := func() []string { c := calls(); r := c[before:]; before = len(c); return r }

			// Waiting less than the timeout: left alone.
			ok(t, checkTimeouts(t, e.c))
			if got := newCalls(); len(got) != 0 {
				t.Fatalf("a node waiting 0 s was retried: %v", got)
			}
			// Waiting longer, no agent: power-cycled into its network boot, still waiting.
			old := time.Now().Add(-15 * time.Minute).UTC()
			e.update(t, n.UUID, func(n *ironwork.Node) { n.ProvisionUpdatedAt = &old })
			ok(t, checkTimeouts(t, e.c))
			if got := newCalls(); !cmp.Equal(got, retried) {
				t.Fatalf("boot retry: calls %v, want %v", got, retried)
			}
			got := e.settled(t, n.UUID, tc.wait)
			if r, _ := got.DriverInternalInfo["boot_retries"].(float64); r != 1 || got.Reservation != "" {
				t.Fatalf("after the retry: boot_retries %v, reservation %q", got.DriverInternalInfo["boot_retries"], got.Reservation)
			}
			// Not again before another timeout has passed since the retry.
			ok(t, checkTimeouts(t, e.c))
			if got := newCalls(); len(got) != 0 {
				t.Fatalf("retried again at once: %v", got)
			}
			// An agent that heartbeats recently is alive: left alone even after the retry's timeout.
			e.update(t, n.UUID, func(n *ironwork.Node) {
				n.DriverInternalInfo["boot_retried_at"] = ago(11 * time.Minute) // in this wait, entered 15 min ago
				n.DriverInternalInfo["agent_last_heartbeat"] = ago(time.Minute)
			})
			ok(t, checkTimeouts(t, e.c))
			if got := newCalls(); len(got) != 0 {
				t.Fatalf("a node whose agent heartbeats was retried: %v", got)
			}
			// In maintenance: left alone.
			e.update(t, n.UUID, func(n *ironwork.Node) {
				delete(n.DriverInternalInfo, "agent_last_heartbeat")
				n.Maintenance = true
			})
			ok(t, checkTimeouts(t, e.c))
			if got := newCalls(); len(got) != 0 {
				t.Fatalf("a node in maintenance was retried: %v", got)
			}
			// Out of maintenance, the retry's timeout passed: a second retry.
			e.update(t, n.UUID, func(n *ironwork.Node) { n.Maintenance = false })
			ok(t, checkTimeouts(t, e.c))
			if got := newCalls(); !cmp.Equal(got, retried) {
				t.Fatalf("second retry: calls %v, want %v", got, retried)
			}
			if r, _ := e.get(t, n.UUID).DriverInternalInfo["boot_retries"].(float64); r != 2 {
				t.Fatalf("boot_retries %v after the second retry, want 2", r)
			}
			// A retry recorded in an earlier wait does not count in this one.
			e.update(t, n.UUID, func(n *ironwork.Node) {
				n.ProvisionUpdatedAt = &old
				n.DriverInternalInfo["boot_retried_at"] = ago(20 * time.Minute)
				n.DriverInternalInfo["boot_retries"] = 5
			})
			ok(t, checkTimeouts(t, e.c))
			if got := newCalls(); !cmp.Equal(got, retried) {
				t.Fatalf("retry in a new wait: calls %v, want %v", got, retried)
			}
			if r, _ := e.get(t, n.UUID).DriverInternalInfo["boot_retries"].(float64); r != 1 {
				t.Fatalf("boot_retries %v in a new wait, want 1", r)
			}
			// Past the callback timeout (30 min): the node fails, it is not retried.
			older := time.Now().Add(-time.Hour).UTC()
			e.update(t, n.UUID, func(n *ironwork.Node) {
				n.ProvisionUpdatedAt = &older
				n.DriverInternalInfo["boot_retried_at"] = ago(time.Hour)
			})
			ok(t, checkTimeouts(t, e.c))
			if got := newCalls(); slices.Contains(got, "boot.RetryRamdiskBoot") {
				t.Fatalf("a node past the callback timeout was retried: %v", got)
			}
			if st := e.get(t, n.UUID).ProvisionState; st == tc.wait {
				t.Fatalf("a node past the callback timeout still waits (%s)", st)
			}
		})
	}
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		n := waitCases[1].setup(t, e)
		e.settled(t, n.UUID, ironwork.DeployWait)
		old := time.Now().Add(-25 * time.Minute).UTC()
		e.update(t, n.UUID, func(n *ironwork.Node) { n.ProvisionUpdatedAt = &old })
		ok(t, checkTimeouts(t, e.c))
		if got := e.rec.Calls("boot.RetryRamdiskBoot"); len(got) != 0 {
			t.Fatalf("retried without boot_retry_timeout: %v", got)
		}
		e.settled(t, n.UUID, ironwork.DeployWait)
	})
}

// TestEachConductorReadsItsOwnNodes: three conductors on one store; the passes over every node
// and over every deployed node (which read each conductor's ring ranges through the stored
// ring keys) give each conductor exactly the nodes its ring gives it, the nodes stored without
// a ring key included, so that every node of the group is read by one conductor and none by
// two; nodes of a group without a conductor are nobody's.
func TestEachConductorReadsItsOwnNodes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := newStore(t)
	envs := []*env{newEnvOn(t, store, "c1", nil), newEnvOn(t, store, "c2", nil), newEnvOn(t, store, "c3", nil)}
	for _, e := range envs {
		refreshRing(t, e.c, store)
	}
	var nodes []*ironwork.Node
	for i := range 240 {
		nodes = append(nodes, envs[0].node(t, func(n *ironwork.Node) {
			if i%3 == 0 {
				n.ProvisionState = ironwork.Active
			}
			if i%10 == 0 {
				n.ConductorGroup = "no-conductor"
			}
		}))
	}
	// Every seventh node as an older version stores it: no ring key.
	for i := 0; i < len(nodes); i += 7 {
		if _, err := store.DB().ExecContext(ctx, "UPDATE nodes SET ring_key = NULL WHERE id = ?", nodes[i].ID); err != nil {
			t.Fatal(err)
		}
	}
	ring := envs[0].c.Ring()
	for _, f := range []sqlstore.NodeKeyFilter{{}, {ProvisionState: string(ironwork.Active)}} {
		readBy := map[string]string{}
		for _, e := range envs {
			uuids, err := e.c.MyNodeUUIDs(ctx, f)
			ok(t, err)
			for _, u := range uuids {
				if other, dup := readBy[u]; dup {
					t.Errorf("filter %+v: node %s read by %s and %s", f, u, other, e.host)
				}
				readBy[u] = e.host
			}
		}
		want := 0
		for _, n := range nodes {
			if f.ProvisionState != "" && string(n.ProvisionState) != f.ProvisionState {
				continue
			}
			owner := ring.ConductorFor(n)
			if owner != "" {
				want++
			}
			if readBy[n.UUID] != owner {
				t.Errorf("filter %+v: node %s (group %q) read by %q, its owner is %q", f, n.UUID, n.ConductorGroup, readBy[n.UUID], owner)
			}
		}
		if len(readBy) != want || want == 0 {
			t.Errorf("filter %+v: %d nodes read, want %d", f, len(readBy), want)
		}
	}
}
