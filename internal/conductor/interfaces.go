package conductor

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/ironwork/ironwork"
)

// The driver interfaces the conductor consumes. Each is small; an implementation that can do
// more says so by implementing one of the optional interfaces below as well.

// Power reads and changes a node's power state. After SetPowerState returns, the node is in
// the target state or the call failed: implementations re-read the BMC until it agrees.
// PowerState reads only the task node's identity, driver and interfaces, driver_info,
// driver_internal_info and power state: the power sync gives it a node read with those and a
// few other key fields alone (sqlstore.Store.LightNodesByID); the rest are empty.
type Power interface {
	PowerState(ctx context.Context, t *Task) (ironwork.PowerState, error)
	SetPowerState(ctx context.Context, t *Task, target ironwork.PowerState, timeout time.Duration) error
}

// Management reads and sets a node's boot device.
type Management interface {
	BootDevice(ctx context.Context, t *Task) (BootDevice, error)
	SetBootDevice(ctx context.Context, t *Task, dev BootDevice) error
	SupportedBootDevices(ctx context.Context, t *Task) ([]string, error)
}

// BootDevice is a boot device and whether it stays after the next boot.
type BootDevice struct {
	Device     string `json:"boot_device"`
	Persistent bool   `json:"persistent"`
}

// Boot devices as Ironic names them.
const (
	BootPXE   = "pxe"
	BootDisk  = "disk"
	BootCDROM = "cdrom"
	BootBIOS  = "bios"
	BootSafe  = "safe"
	// BootUEFIHTTP is UEFI HTTP boot (Redfish's UefiHttp), as Ironic's "uefihttp".
	BootUEFIHTTP = "uefihttp"
	// BootUSB is a USB device (Redfish's Usb): a BMC's virtual USB stick. Internal to the
	// boot interfaces: the API's boot device list does not offer it, as Ironic's does not.
	BootUSB = "usb"
)

// Deploy writes an instance onto a node and removes it again.
type Deploy interface {
	// Deploy runs the deploy interface's main deploy step; wait means the node now waits for a
	// callback (an agent) before the next step.
	Deploy(ctx context.Context, t *Task) (wait bool, err error)
	// TearDown undoes a deployment: the node ends powered off.
	TearDown(ctx context.Context, t *Task) error
}

// Boot prepares what a node network-boots: the deploy ramdisk or the instance.
type Boot interface {
	PrepareRamdisk(ctx context.Context, t *Task) error
	CleanUpRamdisk(ctx context.Context, t *Task) error
	PrepareInstance(ctx context.Context, t *Task) error
	CleanUpInstance(ctx context.Context, t *Task) error
}

// Optional abilities, discovered by type assertion.

// Validator checks that a node has what an interface needs (driver_info keys, images...).
type Validator interface {
	Validate(ctx context.Context, t *Task) error
}

// Rebooter reboots in one operation; without it a reboot is power off then on.
type Rebooter interface {
	Reboot(ctx context.Context, t *Task, soft bool, timeout time.Duration) error
}

// NetworkBootRetrier is a boot interface whose ramdisk boots from the network (PXE, iPXE,
// UEFI HTTP). RetryRamdiskBoot makes the node's next boot that network boot again, as
// PrepareRamdisk left it (a one-time boot device is used up by the boot that failed); the
// conductor then power-cycles the node (Config.BootRetryTimeout). Virtual media boots are not
// retried, as in Ironic.
type NetworkBootRetrier interface {
	RetryRamdiskBoot(ctx context.Context, t *Task) error
}

// SoftPower can shut a node down gracefully.
type SoftPower interface {
	SoftPowerOff(ctx context.Context, t *Task, timeout time.Duration) error
}

// NMIInjector sends a non-maskable interrupt.
type NMIInjector interface {
	InjectNMI(ctx context.Context, t *Task) error
}

// BootModeSetter switches between BIOS and UEFI boot.
type BootModeSetter interface {
	SetBootMode(ctx context.Context, t *Task, mode string) error
}

// SecureBootSetter turns UEFI secure boot on or off.
type SecureBootSetter interface {
	SetSecureBoot(ctx context.Context, t *Task, on bool) error
}

// VirtualMedia attaches a remote image (a URL) to a node's virtual CD drive through its BMC,
// for boot interfaces that boot from virtual media.
type VirtualMedia interface {
	InsertVirtualMedia(ctx context.Context, t *Task, image string) error
	EjectVirtualMedia(ctx context.Context, t *Task) error
}

// SerialConsole attaches to a node's serial console (IPMI Serial-over-LAN): bytes read from
// in go to the node, the node's output goes to out, until ctx ends or in is exhausted. It is
// the seam for the console interfaces to come.
type SerialConsole interface {
	AttachConsole(ctx context.Context, t *Task, in io.Reader, out io.Writer) error
}

// StepProvider offers clean, deploy or service steps.
type StepProvider interface {
	Steps(kind StepKind) []Step
}

// StepRunner runs one of the steps its interface offers; wait means the step continues
// asynchronously and the node waits for a callback (an agent), or for work the step left on
// the BMC (the interface is then a BMCPoller and recorded it with Task.WaitForBMC).
type StepRunner interface {
	RunStep(ctx context.Context, t *Task, step Step) (wait bool, err error)
}

// Inspector discovers a node's hardware properties.
type Inspector interface {
	Inspect(ctx context.Context, t *Task) (wait bool, err error)
}

// HardwareInspector inspects a node out of band (Ironic's redfish inspect interface): it reads
// the hardware from the BMC, with no boot, and returns what it found. The conductor applies
// the result as it applies an agent's inventory: properties, the boot_mode capability, ports.
type HardwareInspector interface {
	InspectHardware(ctx context.Context, t *Task) (*InspectResult, error)
}

// InspectResult is what an out-of-band inspection found; zero values are "not reported".
type InspectResult struct {
	CPUs     int    // logical CPUs (properties.cpus)
	CPUArch  string // properties.cpu_arch: x86_64, aarch64, ppc64le, ia64, mips64
	MemoryMB int64  // properties.memory_mb
	// LocalGB is properties.local_gb: the smallest disk of 4 GiB or more, in GiB, less one
	// (0: no such disk, as Ironic reports a disk-less node).
	LocalGB  int64
	BootMode string   // "uefi" or "bios": the boot_mode capability
	MACs     []string // lower-case MAC addresses of the enabled NICs: a port each
}

// Rescuer boots a rescue environment on an active node and back.
type Rescuer interface {
	Rescue(ctx context.Context, t *Task) (wait bool, err error)
	Unrescue(ctx context.Context, t *Task) error
}

// TakeOverer prepares what a node needs when its conductor changes (boot files, console).
type TakeOverer interface {
	TakeOver(ctx context.Context, t *Task) error
}

// WaitForPower re-reads a BMC's power state every interval until it is want, ctx ends or
// timeout passes; BMCs apply power changes late, and some report the old state for a while.
func WaitForPower(ctx context.Context, read func() (ironwork.PowerState, error), want ironwork.PowerState,
	timeout, interval time.Duration) error {
	if timeout <= 0 {
		timeout = time.Minute
	}
	deadline := time.Now().Add(timeout)
	last := "unknown"
	for {
		st, err := read()
		if err == nil && st == want {
			return nil
		}
		if err == nil {
			last = string(st)
		} else {
			last = "unreadable: " + err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the BMC still reports power state %q %s after the request for %s", last, timeout, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}
