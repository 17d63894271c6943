package ironwork

import (
	"encoding/json"
	"testing"
)

func TestParseRAIDConfig(t *testing.T) {
	for _, tc := range []struct {
		name, body, err string
		want            int
	}{
		{name: "one mirror", body: `{"logical_disks": [{"size_gb": 10, "raid_level": "1", "is_root_volume": true}]}`, want: 1},
		{name: "MAX and software", body: `{"logical_disks": [{"size_gb": "MAX", "raid_level": "0", "controller": "software", "physical_disks": [{"name": "/dev/vda"}, {"name": "/dev/vdb"}]}]}`, want: 1},
		{name: "every property", body: `{"logical_disks": [{"size_gb": 100, "raid_level": "5", "volume_name": "v", "is_root_volume": false,
			"share_physical_disks": true, "disk_type": "ssd", "interface_type": "sas", "number_of_physical_disks": 3, "controller": "RAID.1", "physical_disks": ["d1", "d2", "d3"]}]}`, want: 1},
		{name: "no logical_disks", body: `{}`, err: "RAID config validation error: 'logical_disks' is a required property"},
		{name: "unknown top key", body: `{"logical_disks": [], "x": 1}`, err: "RAID config validation error: Additional properties are not allowed ('x' was unexpected)"},
		{name: "not a list", body: `{"logical_disks": {"a": 1}}`, err: "RAID config validation error: {'a': 1} is not of type 'array'"},
		{name: "empty list", body: `{"logical_disks": []}`, err: "RAID config validation error: [] is too short"},
		{name: "not an object", body: `{"logical_disks": ["x"]}`, err: "RAID config validation error: 'x' is not of type 'object'"},
		{name: "no size", body: `{"logical_disks": [{"raid_level": "1"}]}`, err: "RAID config validation error: 'size_gb' is a required property"},
		{name: "no level", body: `{"logical_disks": [{"size_gb": 1}]}`, err: "RAID config validation error: 'raid_level' is a required property"},
		{name: "bad level", body: `{"logical_disks": [{"size_gb": 1, "raid_level": "7"}]}`,
			err: "RAID config validation error: '7' is not one of ['JBOD', '0', '1', '2', '5', '6', '1+0', '5+0', '6+0']"},
		{name: "numeric level", body: `{"logical_disks": [{"size_gb": 1, "raid_level": 1}]}`, err: "RAID config validation error: 1 is not of type 'string'"},
		{name: "fraction size", body: `{"logical_disks": [{"size_gb": 1.5, "raid_level": "1"}]}`, err: "RAID config validation error: 1.5 is not valid under any of the given schemas"},
		{name: "negative size", body: `{"logical_disks": [{"size_gb": -1, "raid_level": "1"}]}`, err: "RAID config validation error: -1 is not valid under any of the given schemas"},
		{name: "min size", body: `{"logical_disks": [{"size_gb": "min", "raid_level": "1"}]}`, err: "RAID config validation error: 'min' is not valid under any of the given schemas"},
		{name: "unknown disk key", body: `{"logical_disks": [{"size_gb": 1, "raid_level": "1", "speed": "fast"}]}`,
			err: "RAID config validation error: Additional properties are not allowed ('speed' was unexpected)"},
		{name: "disk type", body: `{"logical_disks": [{"size_gb": 1, "raid_level": "1", "disk_type": "nvme"}]}`,
			err: "RAID config validation error: 'nvme' is not one of ['hdd', 'ssd']"},
		{name: "interface type", body: `{"logical_disks": [{"size_gb": 1, "raid_level": "1", "interface_type": "usb"}]}`,
			err: "RAID config validation error: 'usb' is not one of ['sata', 'scsi', 'sas']"},
		{name: "zero disks", body: `{"logical_disks": [{"size_gb": 1, "raid_level": "1", "number_of_physical_disks": 0}]}`,
			err: "RAID config validation error: 0 is less than or equal to the minimum of 0"},
		{name: "root not bool", body: `{"logical_disks": [{"size_gb": 1, "raid_level": "1", "is_root_volume": "yes"}]}`,
			err: "RAID config validation error: 'yes' is not of type 'boolean'"},
		{name: "physical disks need a controller", body: `{"logical_disks": [{"size_gb": 1, "raid_level": "1", "physical_disks": ["a", "b"]}]}`,
			err: "RAID config validation error: 'controller' is a dependency of 'physical_disks'"},
		{name: "one hint object", body: `{"logical_disks": [{"size_gb": 1, "raid_level": "1", "controller": "software", "physical_disks": [{"name": "/dev/vda"}]}]}`,
			err: "RAID config validation error: [{'name': '/dev/vda'}] is not valid under any of the given schemas"},
		{name: "two roots", body: `{"logical_disks": [{"size_gb": 1, "raid_level": "1", "is_root_volume": true}, {"size_gb": 1, "raid_level": "0", "is_root_volume": true}]}`,
			err: "Raid config cannot have more than one root volume. 2 root volumes were specified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cfg JSONObject
			if err := json.Unmarshal([]byte(tc.body), &cfg); err != nil {
				t.Fatal(err)
			}
			disks, err := ParseRAIDConfig(cfg)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err || ErrorCode(err) != EINVALID {
					t.Fatalf("error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || len(disks) != tc.want {
				t.Fatalf("= %d disks, %v", len(disks), err)
			}
		})
	}
}

func TestRAIDLevelCapacity(t *testing.T) {
	for _, tc := range []struct {
		level string
		n     int
		want  int64
	}{{"0", 3, 300}, {"1", 2, 100}, {"5", 4, 300}, {"6", 4, 200}, {"1+0", 4, 200}, {"JBOD", 1, 100}} {
		l, ok := RAIDLevelInfo(tc.level)
		if got := l.UsableBytes(tc.n, 100); !ok || got != tc.want {
			t.Errorf("RAID %s over %d disks of 100 = %d, want %d", tc.level, tc.n, got, tc.want)
		}
	}
}

// FuzzParseRAIDConfig: any JSON object is either refused with EINVALID or parsed into logical
// disks that render back to a configuration the parser accepts.
func FuzzParseRAIDConfig(f *testing.F) {
	f.Add(`{"logical_disks": [{"size_gb": 10, "raid_level": "1", "controller": "software"}]}`)
	f.Add(`{"logical_disks": [{"size_gb": "MAX", "raid_level": "1+0", "physical_disks": ["a", "b"]}]}`)
	f.Add(`{"logical_disks": [{"size_gb": 1e300, "raid_level": "0"}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		var cfg JSONObject
		if json.Unmarshal([]byte(body), &cfg) != nil {
			return
		}
		disks, err := ParseRAIDConfig(cfg)
		if err != nil {
			if ErrorCode(err) != EINVALID {
				t.Fatalf("error of kind %s: %v", ErrorCode(err), err)
			}
			return
		}
		list := make([]any, len(disks))
		for i, d := range disks {
			list[i] = map[string]any(d.Object())
		}
		raw, _ := json.Marshal(JSONObject{"logical_disks": list})
		var again JSONObject
		_ = json.Unmarshal(raw, &again)
		if _, err := ParseRAIDConfig(again); err != nil {
			t.Fatalf("rendered %s is refused: %v", raw, err)
		}
	})
}
