package agent

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSoftwareRAID(t *testing.T) {
	ld := func(level string, size any, extra ...string) map[string]any {
		m := map[string]any{"raid_level": level, "size_gb": size, "controller": "software"}
		for _, e := range extra {
			switch e {
			case "hardware":
				m["controller"] = "RAID.Integrated.1-1"
			case "one-hint":
				m["physical_disks"] = []any{map[string]any{"name": "/dev/vda"}}
			case "names":
				m["physical_disks"] = []any{"/dev/vda", "/dev/vdb"}
			}
		}
		return m
	}
	cfg := func(lds ...map[string]any) map[string]any {
		list := make([]any, len(lds))
		for i, l := range lds {
			list[i] = l
		}
		return map[string]any{"logical_disks": list}
	}
	for _, tc := range []struct {
		name string
		cfg  map[string]any
		want string // "" = accepted
	}{
		{"mirror", cfg(ld("1", "MAX")), ""},
		{"mirror and stripe", cfg(ld("1", 10.0), ld("0", "MAX")), ""},
		{"no logical disks", map[string]any{}, "no logical disks"},
		{"three", cfg(ld("1", 1.0), ld("0", 1.0), ld("0", "MAX")), "one or two logical disks"},
		{"first not RAID 1", cfg(ld("0", "MAX")), "the first logical disk must be RAID 1"},
		{"RAID 5", cfg(ld("1", 10.0), ld("5", "MAX")), "RAID level 5 is not supported"},
		{"hardware controller", cfg(ld("1", "MAX", "hardware")), `controller "software"`},
		{"two MAX", cfg(ld("1", "MAX"), ld("0", "MAX")), "only one logical disk may have size MAX"},
		{"one hint", cfg(ld("1", "MAX", "one-hint")), "at least 2 root device hints"},
		{"names, not hints", cfg(ld("1", "MAX", "names")), "must be root device hints"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSoftwareRAID(tc.cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !errors.Is(err, ErrSoftwareRAID) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want ErrSoftwareRAID with %q", err, tc.want)
			}
		})
	}
}

func TestPlanSoftwareRAID(t *testing.T) {
	const g = int64(1) << 30
	disks := []Disk{{Name: "/dev/md0", Size: 4 * g}, {Name: "/dev/vda", Size: 8 * g, Serial: "A"}, {Name: "/dev/vdb", Size: 4 * g, Serial: "B"},
		{Name: "/dev/vdc", Size: 4 * g, Serial: "C"}, {Name: "/dev/vdd", Size: 4 * g, Serial: "D"}}
	hints := func(serials ...string) []json.RawMessage {
		var out []json.RawMessage
		for _, s := range serials {
			out = append(out, json.RawMessage(`{"serial":"`+s+`"}`))
		}
		return out
	}
	held := md090Offset(4 * g) // a 4 GiB member less its metadata area
	for _, tc := range []struct {
		name    string
		logical []SoftwareRAIDDisk
		want    []MDArray
		err     string
	}{
		{"mirror over every disk", []SoftwareRAIDDisk{{RAIDLevel: "1", SizeGB: "MAX"}},
			[]MDArray{{Minor: 0, Level: 1, Members: []string{"/dev/vda", "/dev/vdb", "/dev/vdc", "/dev/vdd"}, Size: held}}, ""},
		{"hinted mirror and the rest striped", []SoftwareRAIDDisk{{RAIDLevel: "1", SizeGB: 3.0, PhysicalDisks: hints("D", "B")}, {RAIDLevel: "0", SizeGB: "MAX"}},
			[]MDArray{{Minor: 0, Level: 1, Members: []string{"/dev/vdd", "/dev/vdb"}, Size: held},
				{Minor: 1, Level: 0, Members: []string{"/dev/vda", "/dev/vdc"}, Size: 2 * held, Logical: 1}}, ""},
		{"too large", []SoftwareRAIDDisk{{RAIDLevel: "1", SizeGB: 5.0, PhysicalDisks: hints("A", "B")}}, nil,
			"logical disk 0 (RAID 1, 5 GiB) does not fit: over /dev/vda, /dev/vdb it holds"},
		{"no disk for a hint", []SoftwareRAIDDisk{{RAIDLevel: "1", SizeGB: "MAX", PhysicalDisks: hints("A", "Z")}}, nil,
			`no unused disk matches physical disk 1 {"serial":"Z"}`},
		{"a disk used twice", []SoftwareRAIDDisk{{RAIDLevel: "1", SizeGB: "MAX", PhysicalDisks: hints("A", "A")}}, nil,
			"no unused disk matches physical disk 1"},
		{"nothing left for the second", []SoftwareRAIDDisk{{RAIDLevel: "1", SizeGB: "MAX"}, {RAIDLevel: "0", SizeGB: 1.0}}, nil,
			"logical disk 1 (RAID 0) needs at least 2 disks, 0 left"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PlanSoftwareRAID(tc.logical, disks)
			if tc.err != "" {
				if err == nil || !errors.Is(err, ErrSoftwareRAID) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("plan (-want +got):\n%s", d)
			}
		})
	}
}
