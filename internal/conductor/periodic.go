package conductor

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// workingStates are the states in which a conductor worker is busy with a node; a node found in
// one with nobody working on it (its conductor died or restarted) is failed.
var workingStates = []ironwork.ProvisionState{ironwork.Verifying, ironwork.Deploying, ironwork.Cleaning,
	ironwork.Inspecting, ironwork.Adopting, ironwork.Rescuing, ironwork.Unrescuing, ironwork.Servicing, ironwork.Deleting}

// waitStates are the states in which a node waits for a callback, with the setting that
// bounds the wait.
var waitStates = []ironwork.ProvisionState{ironwork.DeployWait, ironwork.CleanWait, ironwork.InspectWait,
	ironwork.RescueWait, ironwork.ServiceWait}

// Start recovers this conductor's nodes from a previous run and starts the periodic tasks. They
// stop with Stop.
func (c *Conductor) Start(ctx context.Context) error {
	me, err := c.store.GetConductor(ctx, c.cfg.Hostname)
	if err != nil {
		return fmt.Errorf("conductor %s is not registered: %w", c.cfg.Hostname, err)
	}
	c.id = me.ID
	if err := c.refreshRing(ctx); err != nil {
		return err
	}
	ids, err := c.store.ClearReservations(ctx, c.cfg.Hostname)
	if err != nil {
		return err
	}
	if len(ids) > 0 {
		c.log.Warn("cleared stale node locks of this conductor", "nodes", len(ids))
	}
	c.recoverOrphans(ctx, ids)
	if err := c.recoverUnlocked(ctx); err != nil {
		return err
	}
	if err := c.SyncConsoles(ctx); err != nil {
		c.log.Warn("restore consoles", "error", err)
	}
	c.every(c.cfg.HeartbeatInterval, "heartbeat", c.heartbeat)
	c.every(c.cfg.HeartbeatInterval, "take over", c.takeOvers)
	c.every(c.cfg.HeartbeatInterval, "consoles", c.SyncConsoles)
	c.everyFrom(syncPhase(c.cfg.Hostname, c.cfg.PowerSyncInterval), c.cfg.PowerSyncInterval, "power sync", c.SyncPowerStates)
	c.every(c.cfg.TimeoutCheckInterval, "callback timeouts", c.CheckTimeouts)
	c.every(c.cfg.BMCPollInterval, "bmc waits", c.PollBMCWaits)
	if c.cfg.SendSensorData {
		c.every(c.cfg.SensorDataInterval, "sensor data", c.CollectSensors)
	}
	return nil
}

// syncPhase is when a conductor's first power sync runs after its start: between a quarter of
// the interval and the whole of it, by its hostname. Conductors started together (a restart
// after an upgrade, the scale-out benchmark) would otherwise sync in step, each reading all its
// nodes in the same seconds of every interval; spread, their passes take the database and the
// CPUs in turn. Later passes start an interval apart, so no node waits longer than an interval
// for its first sync.
func syncPhase(hostname string, interval time.Duration) time.Duration {
	h := fnv.New32a()
	h.Write([]byte(hostname))
	return interval/4 + time.Duration(uint64(interval)*3/4*uint64(h.Sum32()%1024)/1024)
}

// every runs fn every interval until the conductor stops.
func (c *Conductor) every(interval time.Duration, name string, fn func(ctx context.Context) error) {
	c.everyFrom(0, interval, name, fn)
}

// everyFrom runs fn once first has passed (when first is positive), then every interval after
// that, until the conductor stops.
func (c *Conductor) everyFrom(first, interval time.Duration, name string, fn func(ctx context.Context) error) {
	c.loops.Add(1)
	go func() {
		defer c.loops.Done()
		ctx, cancel := c.lifetime()
		defer cancel()
		if first > 0 {
			timer := time.NewTimer(first)
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
			}
		}
		// The ticker starts before the first run: runs start an interval apart, however long
		// each takes (a tick that comes while fn still runs is dropped).
		tick := time.NewTicker(interval)
		defer tick.Stop()
		if first > 0 {
			if err := fn(ctx); err != nil && !isContextErr(err) {
				c.log.Warn("periodic task failed", "task", name, "error", err)
			}
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if err := fn(ctx); err != nil && !isContextErr(err) {
					c.log.Warn("periodic task failed", "task", name, "error", err)
				}
			}
		}
	}()
}

// heartbeat records that this conductor lives and refreshes the ring.
func (c *Conductor) heartbeat(ctx context.Context) error {
	if err := c.store.TouchConductor(ctx, c.cfg.Hostname); err != nil {
		return err
	}
	return c.refreshRing(ctx)
}

// takeOvers takes over the nodes of conductors that died and the deployed nodes the ring now
// gives this conductor. It runs in a loop of its own: adopting a dead conductor's share of a
// large fleet can outlast the heartbeat timeout, and must not stop the heartbeat meanwhile.
// All deployed nodes are looked at when the ring's members changed since the last complete
// look (at the first heartbeat after a conductor joined or died), when that look left nodes
// it could not adopt, and otherwise every SyncLocalStateInterval (Ironic's
// sync_local_state_interval): such a look reads the key of every deployed node. Between them
// each pass looks only at the deployed nodes no conductor has adopted yet (an adoption, nodes
// written by a restore), which the database finds without sending the others.
func (c *Conductor) takeOvers(ctx context.Context) error {
	if err := c.TakeOverDead(ctx); err != nil {
		return err
	}
	gen, now := c.ring.Generation(), time.Now()
	last := c.lastAdoption
	whole := !last.done || last.gen != gen || now.Sub(last.at) >= c.cfg.SyncLocalStateInterval
	f := sqlstore.NodeKeyFilter{ProvisionState: string(ironwork.Active)}
	if !whole {
		f = sqlstore.NodeKeyFilter{Unadopted: true}
	}
	failed, err := c.takeOverActive(ctx, f)
	if err != nil {
		return err
	}
	if whole {
		c.lastAdoption = adoptionLook{done: failed == 0, gen: gen, at: now}
	} else if failed > 0 {
		c.lastAdoption.done = false
	}
	return nil
}

// adoptionLook is the last look for deployed nodes to take over (see takeOvers).
type adoptionLook struct {
	done bool      // every node found was adopted
	gen  uint64    // the ring's generation when it began
	at   time.Time // when it began
}

// TakeOverActive adopts the deployed nodes the ring newly gives this conductor (because
// another conductor died or the ring changed): their boot interface prepares what booting the
// instance needs here, and the node records this conductor as its affinity, as Ironic's
// take_over does.
func (c *Conductor) TakeOverActive(ctx context.Context) error {
	_, err := c.takeOverActive(ctx, sqlstore.NodeKeyFilter{ProvisionState: string(ironwork.Active)})
	return err
}

// takeOverActive is TakeOverActive for the deployed nodes f keeps; it also returns how many of
// the nodes it found it could not adopt (locked, or their boot interface failed).
func (c *Conductor) takeOverActive(ctx context.Context, f sqlstore.NodeKeyFilter) (int, error) {
	// Light nodes: the choice reads the driver and interfaces, and takeOver reads the node again
	// under its lock.
	var nodes []*ironwork.Node
	err := c.forMyNodes(ctx, f, func(k sqlstore.NodeKey) bool { return k.Affinity != c.id },
		c.store.LightNodesByID, func(batch []*ironwork.Node) error {
			nodes = append(nodes, batch...)
			return nil
		})
	if err != nil {
		return 0, err
	}
	// A dead conductor leaves thousands of nodes to each survivor. Those whose boot interface
	// has nothing to prepare only change affinity: in one statement per batch. The others are
	// adopted with the power sync's concurrency rather than one after the other.
	var plain []int64
	var prepare []*ironwork.Node
	failed := 0
	for _, n := range nodes {
		if n.ConductorAffinity == c.id {
			continue
		}
		if n.Reservation != "" { // busy: adopted at a later pass, which this one asks for
			failed++
			continue
		}
		d, err := c.driverFor(n)
		if err != nil { // a driver this conductor lacks: no sooner to be had at the next heartbeat
			continue
		}
		if _, ok := d.Impl(ironwork.BootInterface).(TakeOverer); ok {
			prepare = append(prepare, n)
		} else {
			plain = append(plain, n.ID)
		}
	}
	adopted := int64(0)
	for len(plain) > 0 {
		batch := plain[:min(len(plain), 500)]
		plain = plain[len(batch):]
		k, err := c.store.SetConductorAffinity(ctx, batch, string(ironwork.Active), c.id)
		if err != nil {
			return 0, err
		}
		adopted += k
		failed += len(batch) - int(k) // locked, or no longer deployed: looked at again
	}
	if adopted > 0 {
		c.log.Info("took over deployed nodes", "nodes", adopted)
	}
	nodes = prepare
	jobs := make(chan *ironwork.Node)
	var wg sync.WaitGroup
	var failures atomic.Int64
	for range min(c.cfg.PowerSyncWorkers, max(len(nodes), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range jobs {
				if !c.takeOver(ctx, n) {
					failures.Add(1)
				}
			}
		}()
	}
	for _, n := range nodes {
		select {
		case jobs <- n:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	return failed + int(failures.Load()), ctx.Err()
}

// takeOver adopts one deployed node (see TakeOverActive) and says whether it did.
func (c *Conductor) takeOver(ctx context.Context, n *ironwork.Node) bool {
	t, err := c.lock(ctx, n.UUID)
	if err != nil {
		return false
	}
	defer c.release(t.Node)
	if t.Node.ProvisionState != ironwork.Active || t.Node.ConductorAffinity == c.id || c.ring.ConductorFor(t.Node) != c.cfg.Hostname {
		return true // moved on since it was read, or no longer this conductor's
	}
	if to, ok := t.Driver.Impl(ironwork.BootInterface).(TakeOverer); ok {
		if err := to.TakeOver(ctx, t); err != nil {
			t.Log.Warn("take over of a deployed node failed; will retry", "error", err)
			return false
		}
	}
	if err := t.Save(ctx, func(n *ironwork.Node) { n.ConductorAffinity = c.id }); err != nil {
		return false
	}
	t.Log.Info("took over deployed node", "previous_affinity", n.ConductorAffinity)
	return true
}

// refreshRing rebuilds the ring from the live conductors.
func (c *Conductor) refreshRing(ctx context.Context) error {
	_, err := RefreshRing(ctx, c.store, c.ring, c.cfg.HeartbeatTimeout, c.cfg.Hostname)
	return err
}

// RefreshRing rebuilds ring from the conductors whose heartbeat is within timeout (and self,
// when not empty), and returns the JSON-RPC URL of each.
func RefreshRing(ctx context.Context, store *sqlstore.Store, ring *Ring, timeout time.Duration, self string) (map[string]string, error) {
	cs, err := store.ListConductors(ctx, "", 0)
	if err != nil {
		return nil, err
	}
	members := map[string][]string{}
	urls := map[string]string{}
	now := time.Now()
	for _, cd := range cs {
		if sqlstore.ConductorAlive(cd, now, timeout) || cd.Hostname == self {
			members[cd.ConductorGroup] = append(members[cd.ConductorGroup], cd.Hostname)
			urls[cd.Hostname] = cd.RPCURL
		}
	}
	ring.Set(members)
	return urls, nil
}

// TakeOverDead frees the locks of conductors whose heartbeat expired and fails the nodes they
// were working on, so that the survivors can take them over.
func (c *Conductor) TakeOverDead(ctx context.Context) error {
	dead, err := c.store.DeadConductors(ctx, c.cfg.HeartbeatTimeout)
	if err != nil {
		return err
	}
	for _, host := range dead {
		if host == c.cfg.Hostname {
			continue
		}
		ids, err := c.store.ClearReservations(ctx, host)
		if err != nil {
			return err
		}
		c.log.Warn("took over the node locks of a dead conductor", "dead", host, "nodes", len(ids))
		c.recoverOrphans(ctx, ids)
	}
	return nil
}

// recoverUnlocked fails the nodes the ring gives this conductor that rest unlocked in a working
// state: their worker ended without finishing (the conductor stopped mid-work and released its
// locks), and nothing else would ever move them on, as Ironic's start-up fails them.
func (c *Conductor) recoverUnlocked(ctx context.Context) error {
	var ids []int64
	for _, st := range workingStates {
		nodes, err := c.myNodes(ctx, sqlstore.NodeKeyFilter{ProvisionState: string(st)}, func(k sqlstore.NodeKey) bool { return k.Reservation == "" })
		if err != nil {
			return err
		}
		for _, n := range nodes {
			if n.Reservation == "" {
				ids = append(ids, n.ID)
			}
		}
	}
	c.recoverOrphans(ctx, ids)
	return nil
}

// recoverOrphans fails the nodes among ids that were left in a working state.
func (c *Conductor) recoverOrphans(ctx context.Context, ids []int64) {
	for _, id := range ids {
		n, err := c.store.GetNodeByID(ctx, id)
		if err != nil || !slices.Contains(workingStates, n.ProvisionState) {
			continue
		}
		t, err := c.lock(ctx, n.UUID)
		if err != nil {
			continue
		}
		if !slices.Contains(workingStates, t.Node.ProvisionState) { // moved on meanwhile
			c.release(t.Node)
			continue
		}
		reason := fmt.Sprintf("The conductor working on node %s stopped while the node was in state \"%s\".", n.UUID, n.ProvisionState)
		_ = t.Save(ctx, func(n *ironwork.Node) {
			n.TargetPowerState = ""
			n.CleanStep, n.DeployStep, n.ServiceStep = ironwork.JSONObject{}, ironwork.JSONObject{}, ironwork.JSONObject{}
		})
		c.fail(ctx, t, ironwork.Errorf(ironwork.EINVALID, "%s", reason))
		c.release(t.Node)
	}
}

// myNodes lists the nodes the ring gives this conductor among those f keeps, for which keep
// (when not nil) says yes. It reads the key of every node f keeps (sqlstore.NodeKeys) and
// decodes only the nodes it returns: with N conductors, 1/N of the fleet, and fewer when keep
// filters (a heartbeat's take-over and console checks decode almost nothing at rest).
func (c *Conductor) myNodes(ctx context.Context, f sqlstore.NodeKeyFilter, keep func(sqlstore.NodeKey) bool) ([]*ironwork.Node, error) {
	var out []*ironwork.Node
	err := c.forMyNodes(ctx, f, keep, c.store.NodesByID, func(nodes []*ironwork.Node) error {
		out = append(out, nodes...)
		return nil
	})
	return out, err
}

// forMyNodes is myNodes a batch at a time: it reads each batch of at most 500 nodes with read
// and hands it to fn before it reads the next, so a pass over a large share of the fleet holds
// one batch in memory. It stops at the first error of read or fn.
//
// The passes that look at most of the fleet (widePass) read only the ring ranges this
// conductor owns, through the nodes' stored ring keys, and then the few nodes stored without
// one; the others read the keys of the nodes their filter selects (few: a console enabled, a
// wait state, deployed and not adopted) and hash each.
func (c *Conductor) forMyNodes(ctx context.Context, f sqlstore.NodeKeyFilter, keep func(sqlstore.NodeKey) bool,
	read func(context.Context, []int64) ([]*ironwork.Node, error), fn func([]*ironwork.Node) error) error {
	const keysPage, nodesBatch = 5000, 500
	host := c.cfg.Hostname
	// mine hands the nodes of a page of keys that are this conductor's and that keep keeps to
	// fn, in batches.
	mine := func(keys []sqlstore.NodeKey, owner func(sqlstore.NodeKey) string, keep func(sqlstore.NodeKey) bool) error {
		var ids []int64
		for _, k := range keys {
			if owner(k) == host && (keep == nil || keep(k)) {
				ids = append(ids, k.ID)
			}
		}
		for len(ids) > 0 {
			batch := ids[:min(len(ids), nodesBatch)]
			ids = ids[len(batch):]
			nodes, err := read(ctx, batch)
			if err != nil {
				return err
			}
			if err := fn(nodes); err != nil {
				return err
			}
		}
		return nil
	}
	hashed := func(k sqlstore.NodeKey) string { return c.ring.Owner(k.ConductorGroup, k.UUID) }
	byIDs := func(f sqlstore.NodeKeyFilter, keep func(sqlstore.NodeKey) bool) error {
		var after int64
		for {
			keys, err := c.store.NodeKeys(ctx, f, after, keysPage)
			if err != nil || len(keys) == 0 {
				return err
			}
			after = keys[len(keys)-1].ID
			if err := mine(keys, hashed, keep); err != nil {
				return err
			}
		}
	}
	if !widePass(f) {
		return byIDs(f, keep)
	}
	// The ranges are the ring's when the pass begins; a key read after the ring changed is
	// checked against the ring of the moment, as the hashed path does, from its stored hash.
	stored := func(k sqlstore.NodeKey) string { return c.ring.OwnerOfRingKey(k.ConductorGroup, k.RingKey) }
	for _, group := range c.ring.Groups() {
		for _, r := range c.ring.Ranges(group, host) {
			var after *sqlstore.RingCursor
			for {
				keys, err := c.store.NodeKeysInRange(ctx, f, group, r, after, keysPage)
				if err != nil {
					return err
				}
				if len(keys) == 0 {
					break
				}
				last := keys[len(keys)-1]
				after = &sqlstore.RingCursor{RingKey: last.RingKey, ID: last.ID}
				if err := mine(keys, stored, keep); err != nil {
					return err
				}
			}
		}
	}
	// Then the nodes stored without a ring key, found through their own partial index alone
	// (with a state beside it SQLite would read every node in that state), the state checked
	// here. Read after the ranges, so that a node given its key meanwhile (by a store opening
	// during a rolling upgrade) is missed for one pass rather than read twice.
	state := f.ProvisionState
	return byIDs(sqlstore.NodeKeyFilter{MissingRingKey: true}, func(k sqlstore.NodeKey) bool {
		return (state == "" || string(k.ProvisionState) == state) && (keep == nil || keep(k))
	})
}

// widePass reports whether a pass reading the nodes f selects looks at most of the fleet: every
// node (the power sync, the sensors), or every deployed node (the take-over's whole look). Such
// a pass reads this conductor's ring ranges; one whose filter selects few nodes (a console
// enabled, a wait state, deployed and not adopted) reads them through the filter's index.
func widePass(f sqlstore.NodeKeyFilter) bool {
	return !f.ConsoleEnabled && !f.Unadopted && !f.MissingRingKey &&
		(f.ProvisionState == "" || f.ProvisionState == string(ironwork.Active))
}

// SyncPowerStates compares the recorded power state of this conductor's nodes with their
// hardware, with bounded concurrency. Nodes in maintenance, locked or in the middle of work are
// skipped; nodes whose BMC keeps failing go into maintenance with fault "power failure", and
// nodes with that fault whose BMC answers again come out of it.
func (c *Conductor) SyncPowerStates(ctx context.Context) error {
	began := time.Now()
	skip := func(n *ironwork.Node) bool {
		return n.Reservation != "" || slices.Contains(workingStates, n.ProvisionState) || slices.Contains(waitStates, n.ProvisionState) ||
			(n.Maintenance && n.Fault != "power failure")
	}
	jobs := make(chan *ironwork.Node)
	var wg sync.WaitGroup
	for range c.cfg.PowerSyncWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range jobs {
				c.syncOne(ctx, n)
			}
		}()
	}
	// The nodes are read a batch at a time, and only what their power interfaces read
	// (LightNodesByID): the workers sync one batch while the next is read.
	err := c.forMyNodes(ctx, sqlstore.NodeKeyFilter{}, func(k sqlstore.NodeKey) bool {
		return !skip(&ironwork.Node{Reservation: k.Reservation, ProvisionState: k.ProvisionState, Maintenance: k.Maintenance, Fault: k.Fault})
	}, c.store.LightNodesByID, func(nodes []*ironwork.Node) error {
		for _, n := range nodes {
			if skip(n) { // changed since its key was read
				continue
			}
			select {
			case jobs <- n:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	close(jobs)
	wg.Wait()
	if err != nil {
		return err
	}
	if ctx.Err() == nil {
		c.lastSync.Store(began.UnixNano())
	}
	return ctx.Err()
}

// PowerSyncLag is the age of the oldest power sync of this conductor's nodes: the time since
// the last complete sync began (or since the conductor started, before its first). Every node
// the sync covers was compared with its hardware at most this long ago.
func (c *Conductor) PowerSyncLag(now time.Time) time.Duration {
	if ns := c.lastSync.Load(); ns != 0 {
		return now.Sub(time.Unix(0, ns))
	}
	return now.Sub(c.started)
}

func (c *Conductor) syncOne(ctx context.Context, n *ironwork.Node) {
	d, err := c.driverFor(n)
	if err != nil {
		return
	}
	t := c.newTask(ctx, n, d)
	p, ok := d.Power()
	if !ok {
		return
	}
	st, err := p.PowerState(ctx, t)
	if err != nil {
		c.metrics.BMCError(n.Driver, "power_state")
	}
	if n.Maintenance { // fault "power failure": recover once the BMC answers
		if err == nil {
			c.syncFailures.Delete(n.ID)
			_, uerr := c.store.UpdateNode(ctx, n.UUID, func(n *ironwork.Node) error {
				if n.Fault == "power failure" {
					n.Maintenance, n.MaintenanceReason, n.Fault, n.PowerState = false, "", "", st
				}
				return nil
			})
			if uerr == nil {
				t.Log.Info("power failure recovered: node out of maintenance", "state", st)
			}
		}
		return
	}
	if err == nil && (n.PowerState == "" || n.PowerState == st || !c.cfg.ForcePowerStateDuringSync) {
		c.syncFailures.Delete(n.ID)
		if n.PowerState != st {
			if n.PowerState == "" { // a new node: nothing differs, as Ironic logs it
				t.Log.Info("no power state recorded yet; recording the hardware's", "actual", st)
			} else {
				t.Log.Warn("power state differs from the record; recording the hardware's", "recorded", n.PowerState, "actual", st)
			}
			_, _ = c.store.UpdateNode(ctx, n.UUID, func(n *ironwork.Node) error { n.PowerState = st; return nil })
		}
		return
	}
	if err == nil {
		// The hardware disagrees with the record: put it back, under the node's lock.
		lt, lerr := c.lock(ctx, n.UUID)
		if lerr != nil {
			return
		}
		t.Log.Warn("power state differs from the record; setting the hardware to the recorded state", "recorded", n.PowerState, "actual", st)
		err = p.SetPowerState(ctx, lt, n.PowerState, c.cfg.PowerActionTimeout)
		c.release(lt.Node)
		if err == nil {
			c.syncFailures.Delete(n.ID)
			return
		}
	}
	failures := 1
	if v, ok := c.syncFailures.Load(n.ID); ok {
		failures = v.(int) + 1
	}
	c.syncFailures.Store(n.ID, failures)
	t.Log.Warn("power sync failed", "attempt", failures, "max", c.cfg.PowerSyncMaxRetries, "error", err)
	if failures < c.cfg.PowerSyncMaxRetries {
		return
	}
	reason := fmt.Sprintf("During sync_power_state, max retries exceeded for node %s, node state %s does not match expected state. "+
		"Switching node to maintenance mode. Error: %s", n.UUID, orNone(n.PowerState), errText(err))
	_, _ = c.store.UpdateNode(ctx, n.UUID, func(n *ironwork.Node) error {
		n.Maintenance, n.MaintenanceReason, n.Fault, n.LastError = true, reason, "power failure", reason
		return nil
	})
	c.syncFailures.Delete(n.ID)
	t.Log.Error("node put into maintenance: power failure", "reason", reason)
}

func orNone(s ironwork.PowerState) string {
	if s == "" {
		return "None"
	}
	return string(s)
}

// CheckTimeouts fails this conductor's nodes that waited longer than the callback timeout (the
// inspect wait timeout in "inspect wait"), except those that wait on their BMC.
func (c *Conductor) CheckTimeouts(ctx context.Context) error {
	for _, st := range waitStates {
		timeout := c.cfg.CallbackTimeout
		switch st {
		case ironwork.InspectWait:
			timeout = c.cfg.Inspection.WaitTimeout
		case ironwork.RescueWait:
			timeout = c.cfg.RescueCallbackTimeout
		}
		cutoff := time.Now().Add(-timeout)
		nodes, err := c.myNodes(ctx, sqlstore.NodeKeyFilter{ProvisionState: string(st)}, func(k sqlstore.NodeKey) bool { return k.Reservation == "" })
		if err != nil {
			return err
		}
		for _, n := range nodes {
			if n.ProvisionUpdatedAt == nil || n.Reservation != "" || hasBMCWait(n) {
				// A node that waits on its BMC has the deadline of that wait (PollBMCWaits).
				continue
			}
			if n.ProvisionUpdatedAt.After(cutoff) {
				if c.bootRetryDue(n, time.Now()) {
					c.retryBoot(ctx, n.UUID)
				}
				continue
			}
			t, err := c.lock(ctx, n.UUID)
			if err != nil {
				continue
			}
			// The failure's write frees the node with it: a client that sees "deploy failed"
			// can act on the node at once.
			t.freeAtRest = true
			if t.Node.ProvisionState == ironwork.InspectWait && st == ironwork.InspectWait {
				// As Ironic: the node is powered off and no longer boots the ramdisk.
				c.failInspection(ctx, t, ironwork.Errorf(ironwork.EINVALID, "%s", inspectTimeoutReason(timeout)))
			} else if t.Node.ProvisionState == st && st == ironwork.RescueWait {
				c.failRescue(ctx, t, fmt.Sprintf("%s %s (timeout %s).", rescueTimeoutReason, n.UUID, timeout))
			} else if t.Node.ProvisionState == st {
				reason := fmt.Sprintf("Timeout reached while waiting for callback for node %s in state \"%s\" (timeout %s).",
					n.UUID, st, timeout)
				if why, _ := t.Node.DriverInternalInfo[agentUnreachableKey].(string); why != "" {
					reason += " The agent did not answer at its last heartbeat: " + why
				}
				_ = t.Save(ctx, func(n *ironwork.Node) {
					n.CleanStep, n.DeployStep, n.ServiceStep = ironwork.JSONObject{}, ironwork.JSONObject{}, ironwork.JSONObject{}
					dropRemainingSteps(n)
				})
				c.fail(ctx, t, ironwork.Errorf(ironwork.EINVALID, "%s", reason))
			}
			if !t.released {
				c.release(t.Node)
			}
		}
	}
	return nil
}

// bootRetryStates are the wait states in which a node waits for an agent it network-booted, and
// whose boot Config.BootRetryTimeout retries (Ironic's: not inspection, whose timeout powers
// the node off, nor service wait).
var bootRetryStates = []ironwork.ProvisionState{ironwork.DeployWait, ironwork.CleanWait, ironwork.RescueWait}

// bootRetriedKey records, in driver_internal_info, when the node's boot was last retried
// (RFC 3339), and bootRetriesKey how many times in the wait it happened in.
const (
	bootRetriedKey = "boot_retried_at"
	bootRetriesKey = "boot_retries"
)

// bootRetryDue reports whether n has waited BootRetryTimeout for an agent that never called:
// no heartbeat, no earlier retry and no entry into the wait state within the timeout.
func (c *Conductor) bootRetryDue(n *ironwork.Node, now time.Time) bool {
	timeout := c.cfg.BootRetryTimeout
	if timeout <= 0 || n.Maintenance || !slices.Contains(bootRetryStates, n.ProvisionState) || n.ProvisionUpdatedAt == nil {
		return false
	}
	last := *n.ProvisionUpdatedAt
	if a := LoadAgent(n); a.LastHeartbeat.After(last) {
		last = a.LastHeartbeat // alive and heartbeating, maybe busy with a long step
	}
	if s, _ := n.DriverInternalInfo[bootRetriedKey].(string); s != "" {
		if at, err := time.Parse(time.RFC3339, s); err == nil && at.After(last) {
			last = at
		}
	}
	return now.Sub(last) >= timeout
}

// retriedThisWait reports whether n's recorded boot retry happened in its current wait, not in
// an earlier one (the keys stay in driver_internal_info after the wait ends).
func retriedThisWait(n *ironwork.Node) bool {
	s, _ := n.DriverInternalInfo[bootRetriedKey].(string)
	at, err := time.Parse(time.RFC3339, s)
	return err == nil && n.ProvisionUpdatedAt != nil && !at.Before(n.ProvisionUpdatedAt.Truncate(time.Second))
}

// retryBoot power-cycles a node whose agent never called back into its network boot: off, the
// boot device set again, on. A node taken meanwhile, no longer due, or whose boot interface does
// not boot from the network is left alone. The retry is recorded before it starts, so one that
// fails half-way (logged) is tried again a BootRetryTimeout later, like a retry that worked but
// whose agent did not call either, until CallbackTimeout fails the node.
func (c *Conductor) retryBoot(ctx context.Context, uuid string) {
	t, err := c.lock(ctx, uuid)
	if err != nil {
		return
	}
	defer func() {
		if !t.released {
			c.release(t.Node)
		}
	}()
	if !c.bootRetryDue(t.Node, time.Now()) || hasBMCWait(t.Node) {
		return
	}
	r, ok := t.Driver.Impl(ironwork.BootInterface).(NetworkBootRetrier)
	if !ok {
		return
	}
	retries := 1
	if v, ok := t.Node.DriverInternalInfo[bootRetriesKey].(float64); ok && retriedThisWait(t.Node) {
		retries = int(v) + 1
	}
	t.Log.Warn("the agent did not call back: power-cycling the node into its network boot again",
		"state", t.Node.ProvisionState, "boot_retry_timeout", c.cfg.BootRetryTimeout, "retry", retries)
	// Recorded first: a retry that fails half-way is not tried again before the next timeout.
	if err := t.Save(ctx, func(n *ironwork.Node) {
		info := internalInfo(n)
		info[bootRetriedKey] = time.Now().UTC().Format(time.RFC3339)
		info[bootRetriesKey] = retries
	}); err != nil {
		t.Log.Warn("boot retry not recorded", "error", err)
		return
	}
	if err := t.SetPower(ctx, ironwork.PowerOff); err != nil {
		t.Log.Warn("boot retry: power off failed", "error", err)
		return
	}
	if err := r.RetryRamdiskBoot(ctx, t); err != nil {
		t.Log.Warn("boot retry: boot device not set", "error", err)
		return
	}
	if err := t.SetPower(ctx, ironwork.PowerOn); err != nil {
		t.Log.Warn("boot retry: power on failed", "error", err)
	}
}
