// Package conductor owns every change of a node's provision and power state. It takes node
// locks, applies the provision state machine, runs long work on a bounded pool of workers
// through the driver interfaces it defines, and keeps the fleet in step with reality with
// periodic tasks (power sync, callback timeouts, dead-conductor takeover). It talks to hardware
// only through drivers and to the database only through the store.
package conductor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/console"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// Config tunes a conductor. Zero values take the defaults of Defaults.
type Config struct {
	Hostname string
	Group    string
	// Workers bounds the background work in progress (Ironic's workers_pool_size).
	Workers int
	// MaxConcurrentDeploy and MaxConcurrentClean cap those operations.
	MaxConcurrentDeploy int
	MaxConcurrentClean  int
	// AutomatedClean runs clean steps when a node is provided or undeployed.
	AutomatedClean bool
	// PowerActionTimeout bounds one power change.
	PowerActionTimeout time.Duration
	// PowerSyncInterval is how often node power states are compared with the hardware;
	// PowerSyncWorkers bounds the concurrent BMC requests; after PowerSyncMaxRetries failures a
	// node goes into maintenance with fault "power failure".
	PowerSyncInterval   time.Duration
	PowerSyncWorkers    int
	PowerSyncMaxRetries int
	// ForcePowerStateDuringSync sets the hardware to the recorded state when they differ
	// (Ironic's default) instead of recording the hardware's state.
	ForcePowerStateDuringSync bool
	// RequireAgentTLS refuses heartbeats whose callback URL is not https (Ironic's
	// [agent]require_tls): every agent must serve its API over TLS.
	RequireAgentTLS bool
	// CallbackTimeout fails nodes waiting for an agent or inspection callback for longer.
	CallbackTimeout time.Duration
	// RescueCallbackTimeout fails nodes in rescue wait whose rescue ramdisk did not call back
	// for longer (Ironic's [conductor]rescue_callback_timeout).
	RescueCallbackTimeout time.Duration
	// TimeoutCheckInterval is how often wait states are checked for timeouts.
	TimeoutCheckInterval time.Duration
	// BootRetryTimeout, when positive, power-cycles a node waiting in deploy, clean or rescue
	// wait whose agent has not called back for that long back into its network boot (Ironic's
	// [pxe]boot_retry_timeout): firmware that gave up on a network boot does not try again by
	// itself. Checked every TimeoutCheckInterval; 0 leaves such nodes to CallbackTimeout.
	BootRetryTimeout time.Duration
	// BMCPollInterval is how often the BMC work that steps wait on (Redfish tasks, BIOS
	// settings applied at boot) is polled, BMCPollWorkers nodes at a time.
	BMCPollInterval time.Duration
	BMCPollWorkers  int
	// HeartbeatInterval and HeartbeatTimeout govern conductor liveness.
	HeartbeatInterval time.Duration
	HeartbeatTimeout  time.Duration
	// SyncLocalStateInterval is how often a conductor looks for deployed nodes to take over
	// when its hash ring has not changed (Ironic's [conductor]sync_local_state_interval, 180
	// s); a change of the ring's members is acted on at the next heartbeat.
	SyncLocalStateInterval time.Duration
	// Inspection tunes in-band inspection and discovery.
	Inspection InspectionConfig
	// Console configures the serial consoles the conductor serves.
	Console ConsoleConfig
	// SendSensorData reads the hardware sensors of this conductor's nodes every
	// SensorDataInterval (Ironic's [conductor]send_sensor_data and
	// send_sensor_data_interval; off by default, 600 s).
	SendSensorData     bool
	SensorDataInterval time.Duration
	// FastTrack leaves a node's agent running after cleaning (and in-band inspection) and
	// lets a deploy or cleaning use it without a reboot while it heartbeats within
	// FastTrackTimeout (Ironic's [deploy]fast_track, off by default, and fast_track_timeout,
	// 300 s). See fasttrack.go.
	FastTrack        bool
	FastTrackTimeout time.Duration
	// Metrics receives the conductor's measurements; nil measures nothing.
	Metrics Metrics
}

// Defaults returns Ironic's defaults.
func Defaults() Config {
	return Config{
		Workers: 300, MaxConcurrentDeploy: 250, MaxConcurrentClean: 50, AutomatedClean: true,
		PowerActionTimeout: 60 * time.Second, PowerSyncInterval: 60 * time.Second, PowerSyncWorkers: 8,
		PowerSyncMaxRetries: 3, ForcePowerStateDuringSync: true, CallbackTimeout: 30 * time.Minute,
		TimeoutCheckInterval: 60 * time.Second, HeartbeatInterval: 10 * time.Second, HeartbeatTimeout: 60 * time.Second,
		SyncLocalStateInterval: 180 * time.Second,

		RescueCallbackTimeout: 30 * time.Minute, BMCPollInterval: 30 * time.Second, BMCPollWorkers: 8,
		SensorDataInterval: 600 * time.Second, FastTrackTimeout: 300 * time.Second,
	}
}

func (c *Config) fill() {
	d := Defaults()
	orDefault(&c.Workers, d.Workers)
	orDefault(&c.MaxConcurrentDeploy, d.MaxConcurrentDeploy)
	orDefault(&c.MaxConcurrentClean, d.MaxConcurrentClean)
	orDefault(&c.PowerActionTimeout, d.PowerActionTimeout)
	orDefault(&c.PowerSyncInterval, d.PowerSyncInterval)
	orDefault(&c.PowerSyncWorkers, d.PowerSyncWorkers)
	orDefault(&c.PowerSyncMaxRetries, d.PowerSyncMaxRetries)
	orDefault(&c.CallbackTimeout, d.CallbackTimeout)
	orDefault(&c.RescueCallbackTimeout, d.RescueCallbackTimeout)
	orDefault(&c.TimeoutCheckInterval, d.TimeoutCheckInterval)
	orDefault(&c.BMCPollInterval, d.BMCPollInterval)
	orDefault(&c.BMCPollWorkers, d.BMCPollWorkers)
	orDefault(&c.HeartbeatInterval, d.HeartbeatInterval)
	orDefault(&c.HeartbeatTimeout, d.HeartbeatTimeout)
	orDefault(&c.SyncLocalStateInterval, d.SyncLocalStateInterval)
	c.Inspection.fill()
	if c.Console.Address == "" {
		c.Console.Address = "127.0.0.1"
	}
	if c.Console.Ports == (console.PortRange{}) {
		c.Console.Ports = console.DefaultPortRange
	}
	orDefault(&c.SensorDataInterval, d.SensorDataInterval)
	orDefault(&c.FastTrackTimeout, d.FastTrackTimeout)
	if c.Metrics == nil {
		c.Metrics = noMetrics{}
	}
}

// orDefault sets v to def unless it is positive.
func orDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Registry holds the interface implementations a conductor can compose drivers from, by
// interface kind and name.
type Registry map[ironwork.InterfaceKind]map[string]any

// Add registers impl as the implementation called name of kind.
func (r Registry) Add(kind ironwork.InterfaceKind, name string, impl any) {
	if r[kind] == nil {
		r[kind] = map[string]any{}
	}
	r[kind][name] = impl
}

// Driver is a node's composition of interface implementations.
type Driver struct {
	impl map[ironwork.InterfaceKind]any
}

// Impl returns the implementation of kind, or nil.
func (d *Driver) Impl(kind ironwork.InterfaceKind) any { return d.impl[kind] }

// Power returns the node's power interface.
func (d *Driver) Power() (Power, bool) {
	p, ok := d.impl[ironwork.PowerInterface].(Power)
	return p, ok
}

// Management returns the node's management interface.
func (d *Driver) Management() (Management, bool) {
	m, ok := d.impl[ironwork.ManagementInterface].(Management)
	return m, ok
}

// Conductor runs the work on nodes.
type Conductor struct {
	cfg      Config
	store    *sqlstore.Store
	drivers  ironwork.DriverConfig
	registry Registry
	log      *slog.Logger
	ring     *Ring

	stopping chan struct{} // closed by Stop: background work and periodic tasks end with it
	stopOnce sync.Once
	wg       sync.WaitGroup // background work on nodes
	loops    sync.WaitGroup // periodic tasks
	sem      chan struct{}

	id              int64 // this conductor's row in the conductors table, set by Start
	deploys, cleans atomic.Int64
	syncFailures    sync.Map   // node id -> failed power syncs in a row
	discovering     sync.Mutex // one discovery at a time, so a machine is enrolled once
	consoles        consoles   // the serial consoles this conductor serves
	metrics         Metrics
	timings         timings
	// lastSync is when the last complete power sync began (Unix nanoseconds; 0: none yet).
	lastSync atomic.Int64
	// lastAdoption is the take-over loop's last look for deployed nodes (only that loop uses it).
	lastAdoption adoptionLook
	started      time.Time
}

// New returns a conductor; Start begins its periodic work.
func New(cfg Config, store *sqlstore.Store, drivers ironwork.DriverConfig, registry Registry, log *slog.Logger) *Conductor {
	cfg.fill()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Conductor{cfg: cfg, store: store, drivers: drivers, registry: registry, log: log.With("conductor", cfg.Hostname),
		ring: NewRing(), stopping: make(chan struct{}), sem: make(chan struct{}, cfg.Workers), metrics: cfg.Metrics,
		timings: timings{phases: map[string]phaseStart{}, steps: map[string]stepStart{}}, started: time.Now()}
}

// Hostname is the conductor's name.
func (c *Conductor) Hostname() string { return c.cfg.Hostname }

// Ring returns the conductor's view of the hash ring.
func (c *Conductor) Ring() *Ring { return c.ring }

// Task is a node under this conductor's lock, with its composed driver.
type Task struct {
	Node   *ironwork.Node
	Driver *Driver
	c      *Conductor
	Log    *slog.Logger

	// freeAtRest is set while the task's work runs in a worker (or by a periodic task that
	// ends holding nothing more): the write that moves the node to a resting state then also
	// frees its lock, and released says it did (see transitionWith).
	freeAtRest bool
	released   bool
	// req is who caused the work (an API request), for its logs and history.
	req Requester
	// pending, when set by a starter, are changes the task's next transition writes with it
	// (the first step of a deploy, shown as the node enters deploying); stepShown then says
	// the node already shows that step, so runSteps need not write it again.
	pending   func(n *ironwork.Node)
	stepShown bool
}

// errReleased refuses a write by a task whose lock was already freed: the node may belong to
// another operation by now.
var errReleased = errors.New("the task's node lock was already released")

// Save applies fn to the task's node and stores the result.
func (t *Task) Save(ctx context.Context, fn func(n *ironwork.Node)) error {
	return t.saveWithHistory(ctx, fn, nil)
}

// saveWithHistory is Save that also records the history event history returns for the
// changed node (nil: none) in the same write.
func (t *Task) saveWithHistory(ctx context.Context, fn func(n *ironwork.Node), history func(n *ironwork.Node) *ironwork.NodeHistoryEvent) error {
	if t.released {
		return fmt.Errorf("save node %s: %w", t.Node.UUID, errReleased)
	}
	n, err := t.c.store.UpdateNodeWithHistory(ctx, t.Node.UUID, func(n *ironwork.Node) error {
		fn(n)
		return nil
	}, history)
	if err != nil {
		return fmt.Errorf("save node %s: %w", t.Node.UUID, err)
	}
	t.Node = n
	return nil
}

// driverFor composes the driver of a node from the registry.
func (c *Conductor) driverFor(n *ironwork.Node) (*Driver, error) {
	if !c.drivers.HasHardwareType(n.Driver) {
		return nil, ironwork.Errorf(ironwork.EINVALID, "No valid host was found. Reason: No conductor service registered which supports driver %s for conductor group \"%s\".", n.Driver, n.ConductorGroup)
	}
	d := &Driver{impl: make(map[ironwork.InterfaceKind]any, len(n.Interfaces))}
	for _, k := range ironwork.InterfaceKinds {
		name := n.Interfaces[k]
		if name == "" {
			continue
		}
		if impl, ok := c.registry[k][name]; ok {
			d.impl[k] = impl
		}
	}
	return d, nil
}

// lock takes the exclusive lock of a node and returns a task for it.
func (c *Conductor) lock(ctx context.Context, ident string) (*Task, error) {
	n, err := c.store.ReserveNode(ctx, ident, c.cfg.Hostname)
	if err != nil {
		return nil, err
	}
	d, err := c.driverFor(n)
	if err != nil {
		c.release(n)
		return nil, err
	}
	return c.newTask(ctx, n, d), nil
}

// shared returns a task for reading a node without locking it.
func (c *Conductor) shared(ctx context.Context, ident string) (*Task, error) {
	n, err := c.store.GetNode(ctx, ident)
	if err != nil {
		return nil, err
	}
	d, err := c.driverFor(n)
	if err != nil {
		return nil, err
	}
	return c.newTask(ctx, n, d), nil
}

// release frees a node's lock, with a context of its own so that it happens even when the
// work's context has ended.
func (c *Conductor) release(n *ironwork.Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.store.ReleaseNode(ctx, n.ID, c.cfg.Hostname); err != nil {
		c.log.Error("release node lock", "node", n.UUID, "error", err)
	}
}

// errNoWorkers is returned when the worker pool is full.
var errNoWorkers = ironwork.Errorf(ironwork.EUNAVAILABLE, "No free conductor workers available")

// acquireWorker reserves a slot of the worker pool; the caller must run or give it back.
func (c *Conductor) acquireWorker() (release func(), err error) {
	select {
	case c.sem <- struct{}{}:
		c.wg.Add(1)
		return func() { <-c.sem; c.wg.Done() }, nil
	default:
		return nil, errNoWorkers
	}
}

// transition applies event to the task's node: the one place provision states change. It sets
// the target state, the time of the change and last_error (cleared unless given), records a
// history event and logs the change. target overrides the machine's target when not empty.
func (c *Conductor) transition(ctx context.Context, t *Task, ev ironwork.Event, lastError string, target ironwork.ProvisionState) error {
	return c.transitionWith(ctx, t, ev, lastError, target, nil)
}

// transitionWith is transition with more changes to the node, written in the same update.
func (c *Conductor) transitionWith(ctx context.Context, t *Task, ev ironwork.Event, lastError string, target ironwork.ProvisionState, also func(n *ironwork.Node)) error {
	from := t.Node.ProvisionState
	to, ok := ironwork.NextState(from, ev)
	if !ok {
		return ironwork.Errorf(ironwork.EINVALID, "The requested action \"%s\" can not be performed on node \"%s\" while it is in state \"%s\".",
			ev, t.Node.UUID, from)
	}
	if target == "" {
		target = ironwork.TargetOf(to)
	}
	now := time.Now().UTC()
	// Background work that brings the node to rest frees its lock in the same write: a client
	// that sees the new state can act on the node at once, as in Ironic (no 409 "locked").
	free := t.freeAtRest && !working(to)
	severity, level := "INFO", slog.LevelInfo
	if lastError != "" {
		severity, level = "ERROR", slog.LevelWarn
	}
	event := fmt.Sprintf("%s -> %s (%s)", from, to, ev)
	if lastError != "" {
		event += ": " + lastError
	}
	pending := t.pending
	// One write: the new state, the changes that go with it, the lock freed when the node comes
	// to rest, and the history entry (see docs/conductor.md, "Writes per deploy").
	if err := t.saveWithHistory(ctx, func(n *ironwork.Node) {
		if pending != nil {
			pending(n)
		}
		if also != nil {
			also(n)
		}
		c.forgetTokenOnLeaving(n, n.ProvisionState, to)
		n.ProvisionState, n.TargetProvisionState, n.ProvisionUpdatedAt = to, target, &now
		n.LastError = lastError
		if free && n.Reservation == c.cfg.Hostname {
			n.Reservation = ""
		}
	}, func(n *ironwork.Node) *ironwork.NodeHistoryEvent {
		return t.historyEventFor(n, "provisioning", severity, event)
	}); err != nil {
		return err
	}
	if pending != nil {
		t.pending, t.stepShown = nil, true
	}
	if free {
		t.released = true
	}
	c.observeTransition(t.Node.UUID, from, to, ev, now)
	t.Log.Log(ctx, level, "provision state changed", "from", from, "to", to, "event", ev, "target", target, "error", lastError)
	return nil
}

// working reports whether s is a state in which a conductor works on the node and holds its
// lock; in every other state (stable, failed, waiting for a callback, held) the node rests, and
// whatever comes next takes the lock anew.
func working(s ironwork.ProvisionState) bool {
	switch s {
	case ironwork.Verifying, ironwork.Deploying, ironwork.Cleaning, ironwork.Deleting, ironwork.Inspecting,
		ironwork.Adopting, ironwork.Rescuing, ironwork.Unrescuing, ironwork.Servicing:
		return true
	}
	return false
}

// fail moves a task's node to the failed state of its current state with a reason.
func (c *Conductor) fail(ctx context.Context, t *Task, reason error) {
	msg := ironwork.ErrorMessage(reason)
	if ironwork.ErrorCode(reason) == ironwork.EINTERNAL {
		msg = reason.Error()
	}
	if err := c.transition(ctx, t, ironwork.EventFail, msg, ""); err != nil {
		t.Log.Error("cannot record failure", "reason", msg, "error", err)
	}
}

// background runs work on a task's node in a worker that already holds a pool slot, and
// releases the node's lock and the slot when done. The work uses the conductor's context, not
// the request's, so it outlives the request that started it.
func (c *Conductor) background(t *Task, done func(), work func(ctx context.Context, t *Task)) {
	t.freeAtRest = true
	go func() {
		defer done()
		defer func() {
			if !t.released { // else freed by the write that showed the node at rest
				c.release(t.Node)
			}
		}()
		ctx, cancel := c.lifetime()
		defer cancel()
		defer func() {
			if p := recover(); p != nil {
				t.Log.Error("panic in background work", "panic", p)
				c.fail(ctx, t, fmt.Errorf("internal error: %v", p))
			}
		}()
		work(ctx, t)
	}()
}

// lifetime returns a context for work that outlives the request that started it: it ends when
// the conductor stops, or when cancel is called (which the work must do when it ends).
func (c *Conductor) lifetime() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-c.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// Stop cancels background work and the periodic tasks, and waits for them.
func (c *Conductor) Stop() {
	c.stopOnce.Do(func() { close(c.stopping) })
	c.wg.Wait()
	c.loops.Wait()
	c.stopConsoles()
}

// Wait blocks until no background work runs (for tests and graceful shutdown).
func (c *Conductor) Wait() { c.wg.Wait() }

// isContextErr reports whether err came from a cancelled context.
func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
