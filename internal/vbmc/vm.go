// Package vbmc is Ironwork's virtual BMC for labs and demos (the role VirtualBMC and
// sushy-tools play for Ironic): it serves IPMI 2.0 (lanplus, one UDP port per machine) and a
// Redfish service (one HTTP port for all machines) for QEMU virtual machines, and maps power and
// boot-device requests onto starting and stopping the QEMU process with the matching boot
// order. Its Redfish service also describes each machine's hardware (processors, memory,
// disks, NICs, boot mode), read from its QEMU command line, for out-of-band inspection. It owns
// the machines' processes; it knows nothing of Ironwork's nodes.
package vbmc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bougou/go-ipmi/pkg/hal"
	"github.com/bougou/go-ipmi/pkg/hal/mock"
	"github.com/bougou/go-ipmi/pkg/types"
)

// Boot devices a machine can start from.
const (
	BootPXE  = "pxe"
	BootDisk = "disk"
	BootCD   = "cd"
	// BootUSB boots the virtual USB stick (Redfish's Usb).
	BootUSB = "usb"
)

// Virtual media drives a machine's BMC may offer (MachineConfig.VirtualMedia): their
// Redfish ids.
const (
	DriveCD  = "Cd"  // a virtual CD/DVD: QEMU's IDE CD-ROM
	DriveUSB = "Usb" // a virtual USB stick: QEMU's USB mass storage on an xHCI controller
)

// mediaSlot is what one virtual drive holds.
type mediaSlot struct {
	image string // URL of the inserted image, "" for none
	file  string // the downloaded image QEMU attaches
}

// Machine is one virtual machine: a QEMU command line that the BMC starts and stops.
type Machine struct {
	Name string
	// Command is the QEMU command line without a boot order; the BMC appends "-boot ...".
	Command []string
	log     *slog.Logger

	mu         sync.Mutex
	cmd        *exec.Cmd
	exited     chan struct{}
	boot       string // device for the next start
	persistent bool
	lastArgs   []string
	drives     []string             // the virtual drives the BMC offers (DriveCD, DriveUSB)
	media      map[string]mediaSlot // by drive
	bootMode   string               // Redfish BootSourceOverrideMode: "Legacy" or "UEFI"
	httpURI    string               // Boot.HttpBootUri (httpboot.go)
	httpFile   string               // the image downloaded for httpURI, "" before the boot
	fetch      httpFetch            // downloads httpURI (nil: UefiHttp boots fail)
	flags      *types.BootOptionParam_BootFlags
	ack        *types.BootOptionParam_BootInfoAcknowledge

	leds     leds              // indicator lights (leds.go)
	bios     *biosState        // bios.go: current and pending BIOS attributes
	firmware map[string]string // update.go: firmware versions by component, once updated
}

// NewMachine returns a powered-off machine that boots from disk.
func NewMachine(name string, command []string, log *slog.Logger) *Machine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mode := "Legacy"
	if strings.Contains(strings.Join(command, " "), "OVMF") {
		mode = "UEFI"
	}
	return &Machine{Name: name, Command: command, log: log.With("vm", name), boot: BootDisk, persistent: true, bootMode: mode,
		drives: []string{DriveCD}, media: map[string]mediaSlot{},
		flags: &types.BootOptionParam_BootFlags{}, ack: &types.BootOptionParam_BootInfoAcknowledge{},
		bios: newBIOS(name, mode == "UEFI")}
}

// SetDrives chooses the virtual drives the BMC offers (default: a CD only).
func (m *Machine) SetDrives(drives []string) error {
	for _, d := range drives {
		if d != DriveCD && d != DriveUSB {
			return fmt.Errorf("virtual media drive %q: use %s or %s", d, DriveCD, DriveUSB)
		}
	}
	if len(drives) == 0 {
		return errors.New("no virtual media drive")
	}
	m.mu.Lock()
	m.drives = append([]string{}, drives...)
	m.mu.Unlock()
	return nil
}

// Drives returns the virtual drives the BMC offers.
func (m *Machine) Drives() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string{}, m.drives...)
}

// HasDrive says whether the BMC offers the drive.
func (m *Machine) HasDrive(drive string) bool {
	for _, d := range m.Drives() {
		if d == drive {
			return true
		}
	}
	return false
}

// Boot modes as Redfish names them (BootSourceOverrideMode).
const (
	ModeLegacy = "Legacy"
	ModeUEFI   = "UEFI"
)

// BootMode returns the boot mode last set through Redfish (at first: UEFI when the command
// line names OVMF, Legacy otherwise).
func (m *Machine) BootMode() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bootMode
}

// SetBootMode records the boot mode a client asked for. The firmware is the command line's:
// a mode that does not match it is recorded and logged, as a BMC that cannot switch would.
func (m *Machine) SetBootMode(mode string) error {
	if mode != ModeLegacy && mode != ModeUEFI {
		return fmt.Errorf("boot mode %q: use Legacy or UEFI", mode)
	}
	m.mu.Lock()
	m.bootMode = mode
	m.mu.Unlock()
	m.log.Info("boot mode set", "mode", mode)
	return nil
}

// On reports whether the machine's process runs.
func (m *Machine) On() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.onLocked()
}

func (m *Machine) onLocked() bool {
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

// LastArgs returns the arguments of the last start (after the program name).
func (m *Machine) LastArgs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string{}, m.lastArgs...)
}

// Boot returns the device of the next start and whether it stays after it.
func (m *Machine) Boot() (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.boot, m.persistent
}

// SetBoot chooses the device of the next start.
func (m *Machine) SetBoot(dev string, persistent bool) error {
	switch dev {
	case BootPXE, BootDisk, BootCD, BootUSB, BootHTTP:
	default:
		return fmt.Errorf("boot device %q: use pxe, disk, cd, usb or http", dev)
	}
	m.mu.Lock()
	m.boot, m.persistent = dev, persistent
	m.mu.Unlock()
	m.log.Info("boot device set", "device", dev, "persistent", persistent)
	return nil
}

// Media returns the URL of the image in the virtual CD drive ("" when empty).
func (m *Machine) Media() string { return m.MediaIn(DriveCD) }

// MediaIn returns the URL of the image in a virtual drive ("" when empty).
func (m *Machine) MediaIn(drive string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.media[drive].image
}

// SetMedia inserts an image into the virtual CD drive: its URL and the local file QEMU
// attaches ("" for both ejects, and the file of the image before is removed). QEMU sees it
// at the next start, which a Redfish boot from it always is (a reset restarts QEMU).
func (m *Machine) SetMedia(image, file string) { m.SetMediaIn(DriveCD, image, file) }

// SetMediaIn is SetMedia for any of the drives.
func (m *Machine) SetMediaIn(drive, image, file string) {
	m.mu.Lock()
	old := m.media[drive].file
	m.media[drive] = mediaSlot{image: image, file: file}
	m.mu.Unlock()
	if old != "" && old != file {
		os.Remove(old)
	}
	m.log.Info("virtual media", "drive", drive, "image", image, "file", file)
}

// PowerOn starts the QEMU process with the chosen boot order.
func (m *Machine) PowerOn() error {
	if err := m.fetchHTTPBoot(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.onLocked() {
		return nil
	}
	if len(m.Command) == 0 {
		return errors.New("the machine has no command")
	}
	order := map[string]string{BootPXE: "n", BootDisk: "c", BootCD: "d", BootUSB: "c", BootHTTP: "d"}[m.boot]
	bootArg := "order=" + order
	if !m.persistent {
		bootArg = "once=" + order
	}
	args := append(append([]string{}, m.Command[1:]...), "-boot", bootArg)
	if f := m.media[DriveCD].file; f != "" {
		args = append(args, "-drive", "if=none,id=vmedia-cd,media=cdrom,readonly=on,format=raw,file="+f)
		// A boot from the CD gives it bootindex 0: OVMF ignores -boot, and its boot order
		// (bootindex) is what both firmwares follow first.
		dev := "ide-cd,drive=vmedia-cd"
		if m.boot == BootCD {
			dev += ",bootindex=0"
		}
		args = append(args, "-device", dev)
	}
	if f := m.media[DriveUSB].file; f != "" {
		// A removable USB disk holding the image, as a BMC's virtual USB stick; it boots
		// when the image is bootable as a disk (a hybrid ISO: its MBR's EFI partition).
		args = append(args, "-device", "qemu-xhci,id=vmedia-xhci",
			"-drive", "if=none,id=vmedia-usb,readonly=on,format=raw,file="+f)
		dev := "usb-storage,bus=vmedia-xhci.0,drive=vmedia-usb,removable=on"
		if m.boot == BootUSB {
			dev += ",bootindex=0"
		}
		args = append(args, "-device", dev)
	}
	if f := m.httpFile; f != "" && m.boot == BootHTTP {
		// The emulated UEFI HTTP boot (httpboot.go): the downloaded image as a CD that boots first.
		args = append(args, "-drive", "if=none,id=httpboot,media=cdrom,readonly=on,format=raw,file="+f,
			"-device", "ide-cd,drive=httpboot,bootindex=0")
	}
	// The BIOS applies its pending settings (bios.go) as the machine starts, as POST does.
	if changed := m.bios.apply(); len(changed) > 0 {
		m.log.Info("bios settings applied", "attributes", changed)
	}
	cmd := exec.Command(m.Command[0], args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", m.Name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	m.cmd, m.exited, m.lastArgs = cmd, exited, args
	if !m.persistent {
		m.boot, m.persistent = BootDisk, true
	}
	m.log.Info("powered on", "pid", cmd.Process.Pid, "boot", bootArg)
	return nil
}

// PowerOff stops the QEMU process: SIGTERM, then SIGKILL after 5 s.
func (m *Machine) PowerOff() error {
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.mu.Unlock()
	if cmd == nil {
		return nil
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	m.log.Info("powered off")
	return nil
}

// Reset powers the machine off and on again.
func (m *Machine) Reset() error {
	if err := m.PowerOff(); err != nil {
		return err
	}
	return m.PowerOn()
}

// ipmiHAL is the hardware the IPMI server sees: this machine's chassis, mock sensors.
type ipmiHAL struct {
	*mock.HAL
	m *Machine
}

func (h ipmiHAL) Chassis() hal.ChassisHAL { return chassis{h.m} }

// chassis maps IPMI chassis commands onto the machine.
type chassis struct{ m *Machine }

func (c chassis) PowerState(context.Context) (bool, error) { return c.m.On(), nil }

func (c chassis) SetPower(_ context.Context, on bool) error {
	if on {
		return c.m.PowerOn()
	}
	return c.m.PowerOff()
}

func (c chassis) PowerCycle(context.Context) error             { return c.m.Reset() }
func (c chassis) ColdReset(context.Context) error              { return c.m.Reset() }
func (c chassis) WarmReset(context.Context) error              { return c.m.Reset() }
func (c chassis) Identify(context.Context, uint8) error        { return nil }
func (c chassis) IntrusionState(context.Context) (bool, error) { return false, nil }

var selectorToBoot = map[types.BootDeviceSelector]string{
	types.BootDeviceSelectorForcePXE: BootPXE, types.BootDeviceSelectorForceHardDrive: BootDisk,
	types.BootDeviceSelectorForceHardDriveSafe: BootDisk, types.BootDeviceSelectorForceCDROM: BootCD,
	types.BootDeviceSelectorNoOverride: BootDisk,
}

func (c chassis) SetBootFlags(_ context.Context, f *types.BootOptionParam_BootFlags) error {
	c.m.mu.Lock()
	copied := *f
	c.m.flags = &copied
	c.m.mu.Unlock()
	if dev, ok := selectorToBoot[f.BootDeviceSelector]; ok {
		return c.m.SetBoot(dev, f.Persist)
	}
	return nil
}

func (c chassis) GetBootFlags(context.Context) (*types.BootOptionParam_BootFlags, error) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	copied := *c.m.flags
	return &copied, nil
}

func (c chassis) SetBootInfoAcknowledge(_ context.Context, a *types.BootOptionParam_BootInfoAcknowledge) error {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	copied := *a
	c.m.ack = &copied
	return nil
}

func (c chassis) GetBootInfoAcknowledge(context.Context) (*types.BootOptionParam_BootInfoAcknowledge, error) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	copied := *c.m.ack
	return &copied, nil
}
