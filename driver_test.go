package ironwork_test

import (
	"slices"
	"testing"

	"github.com/ironwork/ironwork"
)

// TestHasHardwareType: a hardware type is there when the configuration enables it and the
// catalogue (HardwareTypes) has it; HasHardwareType and HardwareType both say so, for every
// type of the catalogue, names it does not know, and configurations enabling all, some, or an
// unknown one.
func TestHasHardwareType(t *testing.T) {
	some := ironwork.DefaultDriverConfig()
	some.EnabledHardwareTypes = []string{"ipmi", "no-such-type"}
	var catalogue []string
	for _, hw := range ironwork.HardwareTypes() {
		catalogue = append(catalogue, hw.Name)
	}
	if !slices.Contains(catalogue, "ipmi") || !some.HasHardwareType("ipmi") {
		t.Fatalf("ipmi missing from the catalogue %v or from a configuration enabling it", catalogue)
	}
	names := append([]string{"", "no-such-type", "IPMI"}, catalogue...)
	for cname, c := range map[string]ironwork.DriverConfig{"default": ironwork.DefaultDriverConfig(), "some": some} {
		for _, name := range names {
			want := slices.Contains(c.EnabledHardwareTypes, name) && slices.Contains(catalogue, name)
			hw, found := c.HardwareType(name)
			if got := c.HasHardwareType(name); got != want || found != want || (found && hw.Name != name) {
				t.Errorf("%s config, %q: HasHardwareType %v, HardwareType %v (%q); want %v", cname, name, got, found, hw.Name, want)
			}
		}
	}
}
