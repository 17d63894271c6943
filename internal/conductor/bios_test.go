package conductor

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ironwork/ironwork"
)

func ptr[T any](v T) *T { return &v }

// TestCheckBIOSSettings checks requested settings against a registry: every problem named.
func TestCheckBIOSSettings(t *testing.T) {
	known := []ironwork.BIOSSetting{
		{Name: "Turbo", AttributeType: ptr("Enumeration"), AllowableValues: []string{"Enabled", "Disabled"}},
		{Name: "Retries", AttributeType: ptr("Integer"), LowerBound: ptr(int64(0)), UpperBound: ptr(int64(10))},
		{Name: "Serial", AttributeType: ptr("String"), ReadOnly: ptr(true)},
		{Name: "Phone", AttributeType: ptr("String"), MaxLength: ptr(int64(4))},
		{Name: "Sriov", AttributeType: ptr("Boolean")},
	}
	for _, tc := range []struct {
		want []BIOSValue
		err  string
	}{
		{[]BIOSValue{{"Turbo", "Disabled"}, {"Retries", "7"}, {"Retries", 3.0}, {"Sriov", true}, {"Sriov", "false"}, {"Phone", "1234"}}, ""},
		{[]BIOSValue{{"Nope", "x"}}, "Nope is not a BIOS setting"},
		{[]BIOSValue{{"Turbo", "Maybe"}}, "not one of the allowed values"},
		{[]BIOSValue{{"Retries", "11"}}, "above the upper bound 10"},
		{[]BIOSValue{{"Retries", -1.0}}, "below the lower bound 0"},
		{[]BIOSValue{{"Retries", "x"}}, "not an integer"},
		{[]BIOSValue{{"Serial", "x"}}, "read-only"},
		{[]BIOSValue{{"Phone", "12345"}}, "longer than 4"},
		{[]BIOSValue{{"Phone", 12.0}}, "must be a string"},
		{[]BIOSValue{{"Sriov", "perhaps"}}, "not a boolean"},
		{[]BIOSValue{{"Turbo", nil}}, "a value is required"},
		{[]BIOSValue{{"Nope", "x"}, {"Serial", "y"}}, "Nope is not a BIOS setting of this node; Serial: the setting is read-only"},
	} {
		err := CheckBIOSSettings(known, tc.want)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%v: %v", tc.want, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || ironwork.ErrorCode(err) != ironwork.EINVALID):
			t.Errorf("%v: %v, want EINVALID with %q", tc.want, err, tc.err)
		}
	}
	if err := CheckBIOSSettings(nil, []BIOSValue{{"Anything", "x"}}); err != nil {
		t.Errorf("no known settings (never read): %v", err)
	}
}

// FuzzStepArguments feeds arbitrary JSON to the bios and firmware step argument parsers: an
// error or a result, never a panic, and every accepted firmware URL is http(s).
func FuzzStepArguments(f *testing.F) {
	f.Add([]byte(`{"settings": [{"name": "A", "value": "B"}]}`))
	f.Add([]byte(`{"settings": [{"component": "bios", "url": "http://127.0.0.1/x", "wait": 3, "checksum": "ab"}]}`))
	f.Add([]byte(`{"settings": [{"component": "nic:1", "url": "ftp://x", "wait": -1}]}`))
	f.Add([]byte(`{"settings": {}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var args map[string]any
		if json.Unmarshal(raw, &args) != nil {
			return
		}
		if vals, err := BIOSSettingsArg(args); err == nil {
			CheckBIOSSettings([]ironwork.BIOSSetting{{Name: "A", AttributeType: ptr("Integer"), LowerBound: ptr(int64(0))}}, vals)
		}
		if ups, err := FirmwareSettingsArg(args); err == nil {
			for _, u := range ups {
				if !strings.HasPrefix(u.URL, "http://") && !strings.HasPrefix(u.URL, "https://") || u.Wait < 0 {
					t.Fatalf("accepted %+v", u)
				}
			}
		}
	})
}
