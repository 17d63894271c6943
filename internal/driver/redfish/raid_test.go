package redfish

import (
	"context"
	"strings"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

func gib(n int64) int64 { return n << 30 }

// TestPlanVolumes places logical disks on drives, or says why they do not fit.
func TestPlanVolumes(t *testing.T) {
	ctrl := func(sizes ...int64) rfStorage {
		s := rfStorage{URI: "/s/0", ID: "0", Name: "RAID ctrl", VolumesURI: "/s/0/Volumes"}
		for i, size := range sizes {
			id := string(rune('a' + i))
			s.Drives = append(s.Drives, rfDrive{URI: "/s/0/Drives/" + id, ID: id, Size: gib(size), MediaType: "HDD", Protocol: "SAS"})
		}
		return s
	}
	for _, tc := range []struct {
		name   string
		st     []rfStorage
		disks  []ironwork.LogicalDisk
		keep   bool
		drives [][]string
		sizes  []int64
		err    string
	}{
		{name: "mirror on the smallest drives that hold it", st: []rfStorage{ctrl(2, 8, 4, 4)},
			disks:  []ironwork.LogicalDisk{{RAIDLevel: "1", SizeGB: 3}},
			drives: [][]string{{"c", "d"}}, sizes: []int64{gib(3)}},
		{name: "MAX takes the largest and goes last", st: []rfStorage{ctrl(2, 8, 8, 4, 4)},
			disks:  []ironwork.LogicalDisk{{RAIDLevel: "0", SizeMax: true, NumberOfPhysicalDisks: 2}, {RAIDLevel: "1", SizeGB: 4}},
			drives: [][]string{{"b", "c"}, {"d", "e"}}, sizes: []int64{gib(16), gib(4)}},
		{name: "named drives", st: []rfStorage{ctrl(4, 4, 4)},
			disks:  []ironwork.LogicalDisk{{RAIDLevel: "1", SizeGB: 1, Controller: "RAID ctrl", PhysicalDisks: []any{"a", "c"}}},
			drives: [][]string{{"a", "c"}}, sizes: []int64{gib(1)}},
		{name: "too big", st: []rfStorage{ctrl(4, 4)}, disks: []ironwork.LogicalDisk{{RAIDLevel: "1", SizeGB: 5}},
			err: "logical disk 0 (RAID 1, 5 GiB, 2 physical disks) does not fit: controller 0: RAID 1 over 2 of its free drives holds at most 4 GiB"},
		{name: "too few drives", st: []rfStorage{ctrl(4, 4)}, disks: []ironwork.LogicalDisk{{RAIDLevel: "5", SizeGB: 1}},
			err: "controller 0 has 2 free drives that match (0 of its 2 drives"},
		{name: "drives in kept volumes", st: []rfStorage{func() rfStorage {
			s := ctrl(4, 4, 4)
			s.Volumes = []rfVolume{{URI: "/s/0/Volumes/1", Drives: []string{"/s/0/Drives/a", "/s/0/Drives/b"}}}
			return s
		}()}, keep: true, disks: []ironwork.LogicalDisk{{RAIDLevel: "1", SizeGB: 1}},
			err: "controller 0 has 1 free drives that match (2 of its 3 drives are in volumes"},
		{name: "disk type", st: []rfStorage{ctrl(4, 4)}, disks: []ironwork.LogicalDisk{{RAIDLevel: "1", SizeGB: 1, DiskType: "ssd"}},
			err: "has 0 free drives that match"},
		{name: "unknown controller", st: []rfStorage{ctrl(4, 4)}, disks: []ironwork.LogicalDisk{{RAIDLevel: "1", SizeGB: 1, Controller: "nope"}},
			err: `logical disk 0: no Storage controller "nope" on the BMC`},
		{name: "unknown named drive", st: []rfStorage{ctrl(4, 4)},
			disks: []ironwork.LogicalDisk{{RAIDLevel: "1", SizeGB: 1, Controller: "0", PhysicalDisks: []any{"a", "z"}}},
			err:   "logical disk 0: physical disk z is not a free drive of controller 0"},
		{name: "three disks for a mirror", st: []rfStorage{ctrl(4, 4, 4)}, disks: []ironwork.LogicalDisk{{RAIDLevel: "1", SizeGB: 1, NumberOfPhysicalDisks: 3}},
			err: "logical disk 0: RAID 1 takes 2 to 2 physical disks, not 3"},
		{name: "no volumes", st: []rfStorage{{ID: "x", Drives: []rfDrive{{URI: "d"}}}}, disks: []ironwork.LogicalDisk{{RAIDLevel: "0", SizeGB: 1}},
			err: "controller x has no Volumes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := planVolumes(tc.st, tc.disks, tc.keep)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || ironwork.ErrorCode(err) != ironwork.EINVALID {
					t.Fatalf("error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range plan {
				var ids []string
				for _, d := range p.drives {
					ids = append(ids, d.ID)
				}
				if strings.Join(ids, ",") != strings.Join(tc.drives[i], ",") || p.size != tc.sizes[i] {
					t.Errorf("volume %d on %v, %d bytes; want %v, %d", i, ids, p.size, tc.drives[i], tc.sizes[i])
				}
			}
		})
	}
}

// TestRAIDAgainstTheDMTFMockup: DMTF's public-rackmount1 system has SimpleStorage and no
// Storage, so it has no volumes to build: create_configuration says so.
func TestRAIDAgainstTheDMTFMockup(t *testing.T) {
	_, info := newBMC(t)
	tk := task(info)
	tk.Node.TargetRAIDConfig = ironwork.JSONObject{"logical_disks": []any{map[string]any{"size_gb": 10.0, "raid_level": "1"}}}
	_, err := RAID{}.RunStep(context.Background(), tk, conductor.Step{Name: "create_configuration"})
	if err == nil || !strings.Contains(err.Error(), "system "+system+" has no Storage") {
		t.Fatalf("error = %v", err)
	}
}
