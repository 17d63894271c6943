package ironwork

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// RAID levels a target_raid_config may name, in the order of Ironic's schema.
var RAIDLevels = []string{"JBOD", "0", "1", "2", "5", "6", "1+0", "5+0", "6+0"}

// RAIDLevel says how many physical disks a RAID level needs and how many of them hold
// redundancy rather than data (per span, for the nested levels).
type RAIDLevel struct {
	MinDisks, MaxDisks int
	// Overhead is the number of disks' worth of capacity that redundancy takes in one span.
	Overhead int
	// Spans is the minimum number of spans of a nested level (1+0, 5+0, 6+0); 0 otherwise.
	Spans int
}

// RAIDLevelInfo returns what a RAID level needs; ok is false for a level we do not know.
func RAIDLevelInfo(level string) (RAIDLevel, bool) {
	l, ok := map[string]RAIDLevel{
		"JBOD": {MinDisks: 1, MaxDisks: 1},
		"0":    {MinDisks: 1, MaxDisks: 1000},
		"1":    {MinDisks: 2, MaxDisks: 2, Overhead: 1},
		"2":    {MinDisks: 3, MaxDisks: 1000, Overhead: 1},
		"5":    {MinDisks: 3, MaxDisks: 1000, Overhead: 1},
		"6":    {MinDisks: 4, MaxDisks: 1000, Overhead: 2},
		"1+0":  {MinDisks: 4, MaxDisks: 1000, Overhead: 1, Spans: 2},
		"5+0":  {MinDisks: 6, MaxDisks: 1000, Overhead: 1, Spans: 2},
		"6+0":  {MinDisks: 8, MaxDisks: 1000, Overhead: 2, Spans: 2},
	}[level]
	return l, ok
}

// UsableBytes is the capacity of a volume of this level over n disks of size bytes each.
func (l RAIDLevel) UsableBytes(n int, size int64) int64 {
	spans := max(l.Spans, 1)
	perSpan := n / spans
	return int64(spans*(perSpan-l.Overhead)) * size
}

// LogicalDisk is one entry of a target_raid_config or raid_config's logical_disks, as Ironic's
// RAID schema defines it.
type LogicalDisk struct {
	RAIDLevel string
	// SizeGB is the size in GiB; 0 with SizeMax means "the rest of the space".
	SizeGB  int64
	SizeMax bool
	// VolumeName, IsRootVolume, SharePhysicalDisks, DiskType, InterfaceType,
	// NumberOfPhysicalDisks and Controller are the optional properties of the schema.
	VolumeName            string
	IsRootVolume          bool
	SharePhysicalDisks    bool
	DiskType              string
	InterfaceType         string
	NumberOfPhysicalDisks int
	Controller            string
	// PhysicalDisks are the backing disks asked for: names (strings) or, for software RAID,
	// root device hints (objects).
	PhysicalDisks []any
}

// SizeBytes is the requested size in bytes (0 for "MAX").
func (d LogicalDisk) SizeBytes() int64 { return d.SizeGB << 30 }

// Object renders the logical disk as it is stored in raid_config, with only the properties set.
func (d LogicalDisk) Object() JSONObject {
	o := JSONObject{"raid_level": d.RAIDLevel}
	if d.SizeMax {
		o["size_gb"] = "MAX"
	} else {
		o["size_gb"] = d.SizeGB
	}
	if d.VolumeName != "" {
		o["volume_name"] = d.VolumeName
	}
	if d.IsRootVolume {
		o["is_root_volume"] = true
	}
	if d.Controller != "" {
		o["controller"] = d.Controller
	}
	if d.PhysicalDisks != nil {
		o["physical_disks"] = d.PhysicalDisks
	}
	return o
}

// RAIDLogicalDiskProperties is GET /v1/drivers/{d}/raid/logical_disk_properties: the
// properties a logical disk may have and what they mean (the same for every RAID interface,
// as in Ironic, which reads them from its one schema).
func RAIDLogicalDiskProperties() map[string]string {
	return map[string]string{
		"raid_level":               "RAID level for the logical disk. Valid values are 'JBOD', '0', '1', '2', '5', '6', '1+0', '5+0' and '6+0'. Required.",
		"size_gb":                  "Size in GiB (Integer) for the logical disk. Use 'MAX' as size_gb if this logical disk is supposed to use the rest of the space available. Required.",
		"volume_name":              "Name of the volume to be created. If this is not specified, it will be auto-generated. Optional.",
		"is_root_volume":           "Specifies whether this disk is a root volume. By default, this is False. Optional.",
		"share_physical_disks":     "Specifies whether other logical disks can share physical disks with this logical disk. By default, this is False. Optional.",
		"disk_type":                "The type of disk preferred. Valid values are 'hdd' and 'ssd'. If this is not specified, disk type will not be a selection criterion for choosing backing physical disks. Optional.",
		"interface_type":           "The interface type of disk. Valid values are 'sata', 'scsi' and 'sas'. If this is not specified, interface type will not be a selection criterion for choosing backing physical disks. Optional.",
		"number_of_physical_disks": "Number of physical disks to use for this logical disk. By default, the driver uses the minimum number of disks required for that RAID level. Optional.",
		"controller":               "Controller to use for this logical disk. If not specified, the driver will choose a suitable RAID controller on the bare metal node. Optional.",
		"physical_disks":           "The physical disks to use for this logical disk. If not specified, the driver will choose suitable physical disks to use. Optional.",
	}
}

// raidError is Ironic's message for a configuration its RAID schema refuses.
func raidError(format string, args ...any) *Error {
	return Errorf(EINVALID, "RAID config validation error: "+format, args...)
}

// ParseRAIDConfig checks a target_raid_config against Ironic's RAID schema (logical_disks, each
// with raid_level and size_gb, no unknown property, at most one root volume) and returns its
// logical disks. The messages are those of Ironic's JSON schema validation.
func ParseRAIDConfig(cfg JSONObject) ([]LogicalDisk, error) {
	for _, k := range sortedKeys(cfg) {
		if k != "logical_disks" {
			return nil, raidError("Additional properties are not allowed (%s was unexpected)", pyRepr(k))
		}
	}
	raw, ok := cfg["logical_disks"]
	if !ok {
		return nil, raidError("'logical_disks' is a required property")
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, raidError("%s is not of type 'array'", pyRepr(raw))
	}
	if len(list) == 0 {
		return nil, raidError("[] is too short")
	}
	out := make([]LogicalDisk, 0, len(list))
	roots := 0
	for _, item := range list {
		d, err := parseLogicalDisk(item)
		if err != nil {
			return nil, err
		}
		if d.IsRootVolume {
			roots++
		}
		out = append(out, d)
	}
	if roots > 1 {
		return nil, Errorf(EINVALID, "Raid config cannot have more than one root volume. %d root volumes were specified", roots)
	}
	return out, nil
}

func parseLogicalDisk(item any) (LogicalDisk, error) {
	var d LogicalDisk
	m, ok := item.(map[string]any)
	if !ok {
		return d, raidError("%s is not of type 'object'", pyRepr(item))
	}
	props := RAIDLogicalDiskProperties()
	for _, k := range sortedKeys(m) {
		if _, ok := props[k]; !ok {
			return d, raidError("Additional properties are not allowed (%s was unexpected)", pyRepr(k))
		}
	}
	for _, k := range []string{"raid_level", "size_gb"} {
		if _, ok := m[k]; !ok {
			return d, raidError("%s is a required property", pyRepr(k))
		}
	}
	if _, ok := m["physical_disks"]; ok {
		if _, ok := m["controller"]; !ok {
			return d, raidError("'controller' is a dependency of 'physical_disks'")
		}
	}
	var err error
	if d.RAIDLevel, err = enumString(m["raid_level"], RAIDLevels); err != nil {
		return d, err
	}
	switch v := m["size_gb"].(type) {
	case string:
		if v != "MAX" {
			return d, raidError("%s is not valid under any of the given schemas", pyRepr(v))
		}
		d.SizeMax = true
	default:
		n, ok := wholeNumber(v)
		if !ok || n < 0 {
			return d, raidError("%s is not valid under any of the given schemas", pyRepr(v))
		}
		d.SizeGB = n
	}
	str := func(k string, dst *string, enum []string) error {
		v, ok := m[k]
		if !ok {
			return nil
		}
		if enum != nil {
			s, err := enumString(v, enum)
			*dst = s
			return err
		}
		s, ok := v.(string)
		if !ok {
			return raidError("%s is not of type 'string'", pyRepr(v))
		}
		*dst = s
		return nil
	}
	boolean := func(k string, dst *bool) error {
		v, ok := m[k]
		if !ok {
			return nil
		}
		b, ok := v.(bool)
		if !ok {
			return raidError("%s is not of type 'boolean'", pyRepr(v))
		}
		*dst = b
		return nil
	}
	for _, e := range []error{
		str("volume_name", &d.VolumeName, nil),
		str("controller", &d.Controller, nil),
		str("disk_type", &d.DiskType, []string{"hdd", "ssd"}),
		str("interface_type", &d.InterfaceType, []string{"sata", "scsi", "sas"}),
		boolean("is_root_volume", &d.IsRootVolume),
		boolean("share_physical_disks", &d.SharePhysicalDisks),
	} {
		if e != nil {
			return d, e
		}
	}
	if v, ok := m["number_of_physical_disks"]; ok {
		n, ok := wholeNumber(v)
		if !ok {
			return d, raidError("%s is not of type 'integer'", pyRepr(v))
		}
		if n <= 0 {
			return d, raidError("%s is less than or equal to the minimum of 0", pyRepr(v))
		}
		d.NumberOfPhysicalDisks = int(min(n, math.MaxInt32))
	}
	if v, ok := m["physical_disks"]; ok {
		list, ok := v.([]any)
		if !ok || !physicalDisksValid(list) {
			return d, raidError("%s is not valid under any of the given schemas", pyRepr(v))
		}
		d.PhysicalDisks = list
	}
	return d, nil
}

// physicalDisksValid is the schema's anyOf: a list of names, or of two or more objects.
func physicalDisksValid(list []any) bool {
	names, objects := true, len(list) >= 2
	for _, x := range list {
		if _, ok := x.(string); !ok {
			names = false
		}
		if _, ok := x.(map[string]any); !ok {
			objects = false
		}
	}
	return names || objects
}

func enumString(v any, enum []string) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", raidError("%s is not of type 'string'", pyRepr(v))
	}
	for _, e := range enum {
		if s == e {
			return s, nil
		}
	}
	quoted := make([]string, len(enum))
	for i, e := range enum {
		quoted[i] = pyRepr(e)
	}
	return "", raidError("%s is not one of [%s]", pyRepr(s), strings.Join(quoted, ", "))
}

// wholeNumber accepts JSON integers (a float64 with no fraction, or an int), not booleans.
func wholeNumber(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int64:
		return n, true
	case float64:
		if n != math.Trunc(n) || math.IsInf(n, 0) || math.Abs(n) > 1<<53 {
			return 0, false
		}
		return int64(n), true
	}
	return 0, false
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// pyRepr renders a JSON value as Python prints it, as Ironic's messages show values.
func pyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return "'" + strings.ReplaceAll(x, "'", `\'`) + "'"
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = pyRepr(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		parts := make([]string, 0, len(x))
		for _, k := range sortedKeys(x) {
			parts = append(parts, pyRepr(k)+": "+pyRepr(x[k]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

// SoftwareRAIDLevels are the RAID levels software RAID builds (the agent's md layer: RAID 0
// and 1 over whole disks; IPA also builds 1+0, 5 and 6 over partitions, we do not).
var SoftwareRAIDLevels = []string{"0", "1"}

// CheckSoftwareRAID checks a configuration (already checked by ParseRAIDConfig) for the agent
// raid interface with IPA's software RAID rules: one or two logical disks, every one with
// controller "software", the first RAID 1, at most one of size MAX, physical_disks (when
// given) two or more root device hints; and ours: levels SoftwareRAIDLevels. All problems are
// named at once.
func CheckSoftwareRAID(disks []LogicalDisk) error {
	var problems []string
	if len(disks) != 1 && len(disks) != 2 {
		problems = append(problems, "Software RAID configuration requires one or two logical disks")
	}
	maxes := 0
	for i, d := range disks {
		if d.Controller != "software" {
			problems = append(problems, fmt.Sprintf("Software RAID configuration requires all logical disks to have 'controller'='software' (logical disk %d has %s)", i, pyRepr(d.Controller)))
		}
		if !slices.Contains(SoftwareRAIDLevels, d.RAIDLevel) {
			problems = append(problems, fmt.Sprintf("Software RAID configuration does not support RAID level %s (logical disk %d; supported: %s)", d.RAIDLevel, i, strings.Join(SoftwareRAIDLevels, ", ")))
		}
		if d.SizeMax {
			maxes++
		}
		if d.PhysicalDisks != nil {
			hints := len(d.PhysicalDisks) >= 2
			for _, p := range d.PhysicalDisks {
				if _, ok := p.(map[string]any); !ok {
					hints = false
				}
			}
			if !hints {
				problems = append(problems, fmt.Sprintf("The physical_disks parameter for software RAID must be a list of at least 2 device hints (dictionaries) (logical disk %d)", i))
			}
		}
	}
	if len(disks) > 0 && disks[0].RAIDLevel != "1" {
		problems = append(problems, "Software RAID Configuration requires RAID-1 for the first logical disk")
	}
	if maxes > 1 {
		problems = append(problems, "Software RAID can have only one RAID device with size 'MAX'")
	}
	if len(problems) > 0 {
		return Errorf(EINVALID, "%s", strings.Join(problems, "; "))
	}
	return nil
}
