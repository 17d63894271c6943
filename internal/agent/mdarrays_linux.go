//go:build linux

package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// KernelMD is software RAID through the running kernel's md driver (md_mod, raid0, raid1):
// what the agent uses in its ramdisk. SysRoot is where /sys and /dev are ("/" on a node).
type KernelMD struct{ SysRoot string }

func (k KernelMD) root() string {
	if k.SysRoot == "" {
		return "/"
	}
	return k.SysRoot
}

// Arrays lists the running md arrays from sysfs (/sys/block/md*/md/level and slaves).
func (k KernelMD) Arrays() ([]MDArray, error) { return ListMDArrays(k.root()) }

// Create builds md array minor at level over whole devices (CreateMD).
func (k KernelMD) Create(minor, level int, members []string) (string, error) {
	return CreateMD(minor, level, members)
}

// Stop stops md array minor (StopMD).
func (k KernelMD) Stop(minor int) error { return StopMD(minor) }

// Wipe removes a device's 0.90 superblock (WipeMDSuperblock).
func (k KernelMD) Wipe(device string) error { return WipeMDSuperblock(device) }

// Assemble starts the arrays whose members carry 0.90 superblocks and are not running yet
// (AssembleMDArrays).
func (k KernelMD) Assemble() ([]MDArray, error) { return AssembleMDArrays(k.root()) }

// Superblock reads a device's 0.90 superblock (ReadMDSuperblock).
func (k KernelMD) Superblock(device string) (MDSuperblock, bool, error) {
	return ReadMDSuperblock(device)
}

// ListMDArrays lists the running md arrays under sysRoot/sys/block: minor, RAID level and
// member devices; inactive ones (no level) are left out.
func ListMDArrays(sysRoot string) ([]MDArray, error) {
	blockDir := filepath.Join(sysRoot, "sys", "block")
	ents, err := os.ReadDir(blockDir)
	if err != nil {
		return nil, fmt.Errorf("list md arrays: %w", err)
	}
	var out []MDArray
	for _, e := range ents {
		minor, err := strconv.Atoi(strings.TrimPrefix(e.Name(), "md"))
		if !strings.HasPrefix(e.Name(), "md") || err != nil {
			continue
		}
		dir := filepath.Join(blockDir, e.Name())
		level := readSysString(filepath.Join(dir, "md", "level"))
		if level == "" {
			continue
		}
		a := MDArray{Minor: minor, Level: -1}
		if n, err := strconv.Atoi(strings.TrimPrefix(level, "raid")); err == nil {
			a.Level = n
		}
		if sectors, err := readSysInt(filepath.Join(dir, "size")); err == nil {
			a.Size = sectors * 512
		}
		slaves, _ := os.ReadDir(filepath.Join(dir, "slaves"))
		for _, s := range slaves {
			a.Members = append(a.Members, "/dev/"+s.Name())
		}
		sort.Strings(a.Members)
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Minor < out[j].Minor })
	return out, nil
}

// AssembleMDArrays starts every array whose members (disks with a 0.90 superblock, grouped
// by the array's UUID) are not part of a running array, and returns the arrays started. A
// group that cannot start is reported in the error; the others still start.
func AssembleMDArrays(sysRoot string) ([]MDArray, error) {
	running, err := ListMDArrays(sysRoot)
	if err != nil {
		return nil, err
	}
	busy := map[string]bool{}
	for _, a := range running {
		for _, m := range a.Members {
			busy[m] = true
		}
	}
	disks, err := ListDisks(sysRoot)
	if err != nil {
		return nil, err
	}
	type group struct {
		sb      MDSuperblock
		members []string
	}
	groups := map[[4]uint32]*group{}
	var order [][4]uint32
	for _, d := range disks {
		if strings.HasPrefix(d.Name, "/dev/md") || busy[d.Name] {
			continue
		}
		sb, ok, err := ReadMDSuperblock(filepath.Join(sysRoot, d.Name))
		if err != nil || !ok {
			continue
		}
		g := groups[sb.UUID]
		if g == nil {
			g = &group{sb: sb}
			groups[sb.UUID] = g
			order = append(order, sb.UUID)
		}
		g.members = append(g.members, d.Name)
	}
	var started []MDArray
	var errs []error
	for _, id := range order {
		g := groups[id]
		if _, err := AssembleMD(g.sb.Minor, g.members); err != nil {
			errs = append(errs, err)
			continue
		}
		started = append(started, MDArray{Minor: g.sb.Minor, Level: g.sb.Level, Members: g.members})
	}
	return started, errors.Join(errs...)
}
