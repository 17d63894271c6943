package conductor_test

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// recorder is a driver for every interface kind that records the calls the conductor makes,
// fails the ones a test names, and keeps its own "hardware" power state so that the record and
// the hardware can disagree.
type recorder struct {
	mu       sync.Mutex
	calls    []string
	fail     map[string]error // "<kind>.<Method>" or "<kind>.RunStep(<step>)" -> error
	panics   map[string]bool  // the same keys: panic instead
	steps    map[ironwork.InterfaceKind]map[conductor.StepKind][]conductor.Step
	waitStep map[string]bool // step names that wait for a callback
	power    ironwork.PowerState
	bootDev  conductor.BootDevice
	vifs     []conductor.VIF
	// wait makes Deploy, Inspect and Rescue wait for a callback.
	deployWait, inspectWait, rescueWait bool
	// hb decides a heartbeat while the node waits; nil resumes.
	hb func(hb conductor.Heartbeat) (bool, error)
	// gate, when not nil, blocks every RunStep until it is closed; entered gets a value when
	// a RunStep is blocked on it.
	gate    chan struct{}
	entered chan string
}

func newRecorder() *recorder {
	return &recorder{fail: map[string]error{}, panics: map[string]bool{}, waitStep: map[string]bool{}, power: ironwork.PowerOff,
		steps: map[ironwork.InterfaceKind]map[conductor.StepKind][]conductor.Step{}}
}

// register adds the recorder as "rec" for every kind, and "rec-plain" as a power interface
// with no optional abilities.
func (r *recorder) register(reg conductor.Registry) {
	for _, k := range ironwork.InterfaceKinds {
		reg.Add(k, "rec", &recIface{r: r, kind: k})
	}
	reg.Add(ironwork.PowerInterface, "rec-plain", plainPower{&recIface{r: r, kind: ironwork.PowerInterface}})
}

// set changes the recorder under its lock.
func (r *recorder) set(fn func(r *recorder)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn(r)
}

// offer makes the interface kind offer steps of a kind.
func (r *recorder) offer(iface ironwork.InterfaceKind, kind conductor.StepKind, steps ...conductor.Step) {
	r.set(func(r *recorder) {
		if r.steps[iface] == nil {
			r.steps[iface] = map[conductor.StepKind][]conductor.Step{}
		}
		r.steps[iface][kind] = steps
	})
}

// failOn makes the call named key fail.
func (r *recorder) failOn(key string) {
	r.set(func(r *recorder) { r.fail[key] = fmt.Errorf("injected %s failure", key) })
}

// Calls returns the calls recorded so far whose name has one of prefixes (all when none).
func (r *recorder) Calls(prefixes ...string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.calls {
		if len(prefixes) == 0 || slices.ContainsFunc(prefixes, func(p string) bool { return len(c) >= len(p) && c[:len(p)] == p }) {
			out = append(out, c)
		}
	}
	return out
}

func (r *recorder) hardwarePower() ironwork.PowerState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.power
}

// recIface is the recorder seen as one interface kind.
type recIface struct {
	r    *recorder
	kind ironwork.InterfaceKind
}

var (
	_ conductor.Power              = (*recIface)(nil)
	_ conductor.Management         = (*recIface)(nil)
	_ conductor.Deploy             = (*recIface)(nil)
	_ conductor.Boot               = (*recIface)(nil)
	_ conductor.NetworkBootRetrier = (*recIface)(nil)
	_ conductor.Validator          = (*recIface)(nil)
	_ conductor.Rebooter           = (*recIface)(nil)
	_ conductor.SoftPower          = (*recIface)(nil)
	_ conductor.NMIInjector        = (*recIface)(nil)
	_ conductor.BootModeSetter     = (*recIface)(nil)
	_ conductor.SecureBootSetter   = (*recIface)(nil)
	_ conductor.SerialConsole      = (*recIface)(nil)
	_ conductor.StepProvider       = (*recIface)(nil)
	_ conductor.StepRunner         = (*recIface)(nil)
	_ conductor.Inspector          = (*recIface)(nil)
	_ conductor.Rescuer            = (*recIface)(nil)
	_ conductor.TakeOverer         = (*recIface)(nil)
	_ conductor.HeartbeatHandler   = (*recIface)(nil)
	_ conductor.Network            = (*recIface)(nil)
)

// call records a call and returns the error the test asked for; it panics when asked to.
func (f *recIface) call(method string) error {
	key := string(f.kind) + "." + method
	f.r.mu.Lock()
	f.r.calls = append(f.r.calls, key)
	err, p := f.r.fail[key], f.r.panics[key]
	f.r.mu.Unlock()
	if p {
		panic("injected panic in " + key)
	}
	return err
}

func (f *recIface) Validate(context.Context, *conductor.Task) error { return f.call("Validate") }

func (f *recIface) ValidateRAIDConfig(context.Context, *conductor.Task, []ironwork.LogicalDisk) error {
	return f.call("ValidateRAIDConfig")
}

func (f *recIface) PowerState(context.Context, *conductor.Task) (ironwork.PowerState, error) {
	if err := f.call("PowerState"); err != nil {
		return "", err
	}
	return f.r.hardwarePower(), nil
}

func (f *recIface) SetPowerState(_ context.Context, _ *conductor.Task, target ironwork.PowerState, _ time.Duration) error {
	if err := f.call("SetPowerState(" + string(target) + ")"); err != nil {
		return err
	}
	f.r.set(func(r *recorder) { r.power = target })
	return nil
}

func (f *recIface) Reboot(_ context.Context, _ *conductor.Task, soft bool, _ time.Duration) error {
	if err := f.call(fmt.Sprintf("Reboot(soft=%t)", soft)); err != nil {
		return err
	}
	f.r.set(func(r *recorder) { r.power = ironwork.PowerOn })
	return nil
}

func (f *recIface) SoftPowerOff(context.Context, *conductor.Task, time.Duration) error {
	if err := f.call("SoftPowerOff"); err != nil {
		return err
	}
	f.r.set(func(r *recorder) { r.power = ironwork.PowerOff })
	return nil
}

func (f *recIface) BootDevice(context.Context, *conductor.Task) (conductor.BootDevice, error) {
	if err := f.call("BootDevice"); err != nil {
		return conductor.BootDevice{}, err
	}
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	return f.r.bootDev, nil
}

func (f *recIface) SetBootDevice(_ context.Context, _ *conductor.Task, dev conductor.BootDevice) error {
	if err := f.call("SetBootDevice(" + dev.Device + ")"); err != nil {
		return err
	}
	f.r.set(func(r *recorder) { r.bootDev = dev })
	return nil
}

func (f *recIface) SupportedBootDevices(context.Context, *conductor.Task) ([]string, error) {
	if err := f.call("SupportedBootDevices"); err != nil {
		return nil, err
	}
	return []string{conductor.BootPXE, conductor.BootDisk}, nil
}

func (f *recIface) InjectNMI(context.Context, *conductor.Task) error { return f.call("InjectNMI") }

func (f *recIface) SetBootMode(_ context.Context, _ *conductor.Task, mode string) error {
	return f.call("SetBootMode(" + mode + ")")
}

func (f *recIface) SetSecureBoot(_ context.Context, _ *conductor.Task, on bool) error {
	return f.call(fmt.Sprintf("SetSecureBoot(%t)", on))
}

func (f *recIface) AttachConsole(context.Context, *conductor.Task, io.Reader, io.Writer) error {
	return f.call("AttachConsole")
}

func (f *recIface) Deploy(context.Context, *conductor.Task) (bool, error) {
	if err := f.call("Deploy"); err != nil {
		return false, err
	}
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	return f.r.deployWait, nil
}

func (f *recIface) TearDown(context.Context, *conductor.Task) error {
	if err := f.call("TearDown"); err != nil {
		return err
	}
	f.r.set(func(r *recorder) { r.power = ironwork.PowerOff })
	return nil
}

func (f *recIface) PrepareRamdisk(context.Context, *conductor.Task) error {
	return f.call("PrepareRamdisk")
}
func (f *recIface) RetryRamdiskBoot(context.Context, *conductor.Task) error {
	return f.call("RetryRamdiskBoot")
}
func (f *recIface) CleanUpRamdisk(context.Context, *conductor.Task) error {
	return f.call("CleanUpRamdisk")
}
func (f *recIface) PrepareInstance(context.Context, *conductor.Task) error {
	return f.call("PrepareInstance")
}
func (f *recIface) CleanUpInstance(context.Context, *conductor.Task) error {
	return f.call("CleanUpInstance")
}

func (f *recIface) Steps(kind conductor.StepKind) []conductor.Step {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	return slices.Clone(f.r.steps[f.kind][kind])
}

func (f *recIface) RunStep(ctx context.Context, _ *conductor.Task, step conductor.Step) (bool, error) {
	name := "RunStep(" + step.Name + ")"
	if len(step.Args) > 0 {
		name = fmt.Sprintf("RunStep(%s %v)", step.Name, step.Args)
	}
	f.r.mu.Lock()
	gate, entered := f.r.gate, f.r.entered
	f.r.mu.Unlock()
	if gate != nil {
		if entered != nil {
			entered <- step.Name
		}
		select {
		case <-gate:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	if err := f.call(name); err != nil {
		return false, err
	}
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	return f.r.waitStep[step.Name], nil
}

func (f *recIface) Inspect(context.Context, *conductor.Task) (bool, error) {
	if err := f.call("Inspect"); err != nil {
		return false, err
	}
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	return f.r.inspectWait, nil
}

func (f *recIface) Rescue(context.Context, *conductor.Task) (bool, error) {
	if err := f.call("Rescue"); err != nil {
		return false, err
	}
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	return f.r.rescueWait, nil
}

func (f *recIface) Unrescue(context.Context, *conductor.Task) error { return f.call("Unrescue") }

func (f *recIface) TakeOver(context.Context, *conductor.Task) error { return f.call("TakeOver") }

func (f *recIface) Heartbeat(_ context.Context, _ *conductor.Task, hb conductor.Heartbeat) (bool, error) {
	if err := f.call("Heartbeat"); err != nil {
		return false, err
	}
	f.r.mu.Lock()
	decide := f.r.hb
	f.r.mu.Unlock()
	if decide == nil {
		return true, nil
	}
	return decide(hb)
}

func (f *recIface) AttachVIF(_ context.Context, _ *conductor.Task, vif conductor.VIF) error {
	if err := f.call("AttachVIF(" + vif.ID + ")"); err != nil {
		return err
	}
	f.r.set(func(r *recorder) { r.vifs = append(r.vifs, vif) })
	return nil
}

func (f *recIface) DetachVIF(_ context.Context, _ *conductor.Task, id string) error {
	if err := f.call("DetachVIF(" + id + ")"); err != nil {
		return err
	}
	found := false
	f.r.set(func(r *recorder) {
		r.vifs = slices.DeleteFunc(r.vifs, func(v conductor.VIF) bool {
			found = found || v.ID == id
			return v.ID == id
		})
	})
	if !found {
		return ironwork.Errorf(ironwork.ENOTFOUND, "VIF %s is not attached", id)
	}
	return nil
}

func (f *recIface) VIFs(context.Context, *conductor.Task) ([]conductor.VIF, error) {
	if err := f.call("VIFs"); err != nil {
		return nil, err
	}
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	return slices.Clone(f.r.vifs), nil
}

// plainPower is a power interface with nothing but the two required methods.
type plainPower struct{ f *recIface }

func (p plainPower) PowerState(ctx context.Context, t *conductor.Task) (ironwork.PowerState, error) {
	return p.f.PowerState(ctx, t)
}

func (p plainPower) SetPowerState(ctx context.Context, t *conductor.Task, target ironwork.PowerState, timeout time.Duration) error {
	return p.f.SetPowerState(ctx, t, target, timeout)
}
