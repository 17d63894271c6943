package ironwork

import "testing"

// TestCatalogueNamesAreBuilt: every name HasHardwareType accepts builds a hardware type of that
// name, so the list of names and the catalogue cannot drift apart.
func TestCatalogueNamesAreBuilt(t *testing.T) {
	for _, name := range hardwareTypeNames {
		hw, ok := knownHardwareType(name)
		if !ok || hw.Name != name || len(hw.Supported) == 0 {
			t.Errorf("%s: built %q (found %v) with %d interface kinds", name, hw.Name, ok, len(hw.Supported))
		}
	}
}
