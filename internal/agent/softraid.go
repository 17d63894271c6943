package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Software RAID as the agent builds it (IPA's create_configuration for controller "software"):
// one md array per logical disk of the node's target_raid_config, each over whole disks with
// version 0.90 metadata at the end of every member (CreateMD), so the data of a RAID-1 array
// starts at byte 0 of each member and either disk boots by itself. IPA partitions every disk
// and builds arrays over partitions, so two logical disks can share disks; this agent does
// not: each array takes its own disks.

// ErrSoftwareRAID marks a software RAID configuration the agent cannot build on this node.
var ErrSoftwareRAID = errors.New("software RAID")

// MDArray is one md array: planned by PlanSoftwareRAID, or running (ListMDArrays).
type MDArray struct {
	Minor   int      // md<Minor>
	Level   int      // 0 or 1
	Members []string // /dev/vda, /dev/vdb
	// Size is what the array holds, in bytes: one member's worth for RAID 1, all of them
	// for RAID 0 (each member less its 0.90 metadata area).
	Size int64
	// Logical is the index of the logical disk it builds (planned arrays).
	Logical int
}

// Device is the array's block device.
func (a MDArray) Device() string { return fmt.Sprintf("/dev/md%d", a.Minor) }

// SoftwareRAIDDisk is the part of a target_raid_config logical disk the agent reads.
type SoftwareRAIDDisk struct {
	RAIDLevel     string            `json:"raid_level"`
	SizeGB        any               `json:"size_gb"` // a number of GiB or "MAX"
	Controller    string            `json:"controller"`
	PhysicalDisks []json.RawMessage `json:"physical_disks"`
}

// ParseSoftwareRAID reads target_raid_config's logical_disks (as the conductor sends it) and
// checks IPA's software RAID rules: one or two logical disks, all with controller
// "software", the first RAID 1, at most one of size MAX, physical_disks (when given) a list
// of two or more root device hints; and this agent's own: RAID levels 0 and 1 only.
func ParseSoftwareRAID(cfg map[string]any) ([]SoftwareRAIDDisk, error) {
	b, err := json.Marshal(cfg["logical_disks"])
	if err != nil {
		return nil, fmt.Errorf("%w: logical_disks: %v", ErrSoftwareRAID, err)
	}
	var disks []SoftwareRAIDDisk
	if err := json.Unmarshal(b, &disks); err != nil {
		return nil, fmt.Errorf("%w: logical_disks: %v", ErrSoftwareRAID, err)
	}
	if len(disks) == 0 {
		return nil, fmt.Errorf("%w: the RAID configuration has no logical disks", ErrSoftwareRAID)
	}
	var problems []string
	if len(disks) > 2 {
		problems = append(problems, "software RAID takes one or two logical disks")
	}
	maxes := 0
	for i, d := range disks {
		if d.Controller != "software" {
			problems = append(problems, fmt.Sprintf("logical disk %d: every logical disk needs controller \"software\"", i))
		}
		if d.RAIDLevel != "0" && d.RAIDLevel != "1" {
			problems = append(problems, fmt.Sprintf("logical disk %d: RAID level %s is not supported by this agent (0 and 1 are)", i, d.RAIDLevel))
		}
		if s, ok := d.SizeGB.(string); ok && s == "MAX" {
			maxes++
		}
		if d.PhysicalDisks != nil && len(d.PhysicalDisks) < 2 {
			problems = append(problems, fmt.Sprintf("logical disk %d: physical_disks must list at least 2 root device hints", i))
		}
		for _, p := range d.PhysicalDisks {
			var h map[string]any
			if json.Unmarshal(p, &h) != nil || h == nil {
				problems = append(problems, fmt.Sprintf("logical disk %d: physical_disks must be root device hints (objects)", i))
				break
			}
		}
	}
	if disks[0].RAIDLevel != "1" {
		problems = append(problems, "the first logical disk must be RAID 1")
	}
	if maxes > 1 {
		problems = append(problems, "only one logical disk may have size MAX")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrSoftwareRAID, strings.Join(problems, "; "))
	}
	return disks, nil
}

// sizeBytes is the logical disk's size in bytes, 0 for MAX.
func (d SoftwareRAIDDisk) sizeBytes() (int64, error) {
	switch v := d.SizeGB.(type) {
	case string:
		if v == "MAX" {
			return 0, nil
		}
	case float64:
		if v >= 0 && v == float64(int64(v)) {
			return int64(v) * gib, nil
		}
	}
	return 0, fmt.Errorf("%w: size_gb %v is neither a whole number of GiB nor MAX", ErrSoftwareRAID, d.SizeGB)
}

// PlanSoftwareRAID places logical disks on disks, before anything changes: logical disk i
// becomes md<i> over the disks its physical_disks hints name (the first unused disk matching
// each hint), or, without hints, over every disk still unused. Disks that are md arrays
// themselves are never members. The level's disk count (two or more) and size_gb (which the
// array must hold) are checked; the error says what does not fit.
func PlanSoftwareRAID(logical []SoftwareRAIDDisk, disks []Disk) ([]MDArray, error) {
	var candidates []Disk
	for _, d := range disks {
		if !strings.HasPrefix(d.Name, "/dev/md") {
			candidates = append(candidates, d)
		}
	}
	used := map[string]bool{}
	var plan []MDArray
	for i, ld := range logical {
		want, err := ld.sizeBytes()
		if err != nil {
			return nil, err
		}
		var members []Disk
		if len(ld.PhysicalDisks) > 0 {
			for j, raw := range ld.PhysicalDisks {
				var h map[string]any
				if err := json.Unmarshal(raw, &h); err != nil {
					return nil, fmt.Errorf("%w: logical disk %d: physical disk %d: %v", ErrSoftwareRAID, i, j, err)
				}
				hs, err := ParseRootDeviceHints(h)
				if err != nil {
					return nil, fmt.Errorf("%w: logical disk %d: physical disk %d: %v", ErrSoftwareRAID, i, j, err)
				}
				k := slices.IndexFunc(candidates, func(d Disk) bool { return !used[d.Name] && hs.Match(d) })
				if k < 0 {
					return nil, fmt.Errorf("%w: logical disk %d: no unused disk matches physical disk %d %s; disks: %s", ErrSoftwareRAID, i, j, raw, describeDisks(candidates))
				}
				used[candidates[k].Name] = true
				members = append(members, candidates[k])
			}
		} else {
			for _, d := range candidates {
				if !used[d.Name] {
					used[d.Name] = true
					members = append(members, d)
				}
			}
		}
		if len(members) < 2 {
			return nil, fmt.Errorf("%w: logical disk %d (RAID %s) needs at least 2 disks, %d left (each array takes whole disks); disks: %s",
				ErrSoftwareRAID, i, ld.RAIDLevel, len(members), describeDisks(candidates))
		}
		level := 1
		if ld.RAIDLevel == "0" {
			level = 0
		}
		a := MDArray{Minor: i, Level: level, Logical: i}
		smallest := int64(-1)
		for _, m := range members {
			a.Members = append(a.Members, m.Name)
			if m.Size > 2<<40 {
				return nil, fmt.Errorf("%w: logical disk %d: %s is larger than 2 TiB, the limit of md 0.90 metadata", ErrSoftwareRAID, i, m.Name)
			}
			if off := md090Offset(m.Size); smallest < 0 || off < smallest {
				smallest = off
			}
		}
		if smallest <= 0 {
			return nil, fmt.Errorf("%w: logical disk %d: a member is too small", ErrSoftwareRAID, i)
		}
		a.Size = smallest
		if level == 0 {
			a.Size = smallest * int64(len(members))
		}
		if a.Size < want {
			return nil, fmt.Errorf("%w: logical disk %d (RAID %s, %d GiB) does not fit: over %s it holds %s",
				ErrSoftwareRAID, i, ld.RAIDLevel, want/gib, strings.Join(a.Members, ", "), formatGiB(a.Size))
		}
		plan = append(plan, a)
	}
	return plan, nil
}

// md090Offset is where a member of size bytes keeps its 0.90 superblock.
func md090Offset(size int64) int64 { return size&^(md090Reserved-1) - md090Reserved }

// md090Reserved is the space 0.90 metadata takes at the end of each member.
const md090Reserved = 64 << 10
