package ironwork_test

import (
	"testing"

	"github.com/ironwork/ironwork"
)

// TestHasHardwareTypeAgreesWithHardwareType: the quick check says yes exactly when the full
// lookup finds the hardware type, for every type of the catalogue, names it does not know,
// and configurations enabling all, some, or an unknown one.
func TestHasHardwareTypeAgreesWithHardwareType(t *testing.T) {
	some := ironwork.DefaultDriverConfig()
	some.EnabledHardwareTypes = []string{"ipmi", "no-such-type"}
	names := []string{"", "no-such-type", "IPMI"}
	for _, hw := range ironwork.HardwareTypes() {
		names = append(names, hw.Name)
	}
	for cname, c := range map[string]ironwork.DriverConfig{"default": ironwork.DefaultDriverConfig(), "some": some} {
		yes := 0
		for _, name := range names {
			_, want := c.HardwareType(name)
			if got := c.HasHardwareType(name); got != want {
				t.Errorf("%s config: HasHardwareType(%q) = %v, HardwareType found it: %v", cname, name, got, want)
			}
			if want {
				yes++
			}
		}
		if yes == 0 {
			t.Errorf("%s config: no hardware type found at all", cname)
		}
	}
}
