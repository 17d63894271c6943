//go:build !linux

package agent

import "errors"

// KernelMD is software RAID through the kernel's md driver: Linux only.
type KernelMD struct{ SysRoot string }

// Arrays is not supported off Linux.
func (KernelMD) Arrays() ([]MDArray, error) { return nil, nil }

// Create is not supported off Linux.
func (KernelMD) Create(int, int, []string) (string, error) { return "", errors.ErrUnsupported }

// Stop is not supported off Linux.
func (KernelMD) Stop(int) error { return errors.ErrUnsupported }

// Wipe is not supported off Linux.
func (KernelMD) Wipe(string) error { return errors.ErrUnsupported }

// Assemble is not supported off Linux.
func (KernelMD) Assemble() ([]MDArray, error) { return nil, nil }

// Superblock is not supported off Linux.
func (KernelMD) Superblock(string) (MDSuperblock, bool, error) { return MDSuperblock{}, false, nil }

// MDSuperblock is what a member's 0.90 superblock says.
type MDSuperblock struct {
	Minor, Level, RaidDisks int
	UUID                    [4]uint32
}
