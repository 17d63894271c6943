package conductor

import (
	"fmt"
	"testing"
	"time"
)

// TestSyncPhaseSpreadsConductors: a conductor's first power sync comes within its first
// interval, never in the first quarter, and conductors named apart start their passes apart.
func TestSyncPhaseSpreadsConductors(t *testing.T) {
	const interval = time.Minute
	seen := map[time.Duration]string{}
	for i := 1; i <= 8; i++ {
		host := fmt.Sprintf("cond-%d", i)
		p := syncPhase(host, interval)
		if p < interval/4 || p >= interval {
			t.Fatalf("%s: first sync after %s, want within [%s, %s)", host, p, interval/4, interval)
		}
		if p != syncPhase(host, interval) {
			t.Fatalf("%s: the phase changes from call to call", host)
		}
		if other, ok := seen[p]; ok {
			t.Fatalf("%s and %s sync in step (%s)", host, other, p)
		}
		seen[p] = host
	}
}
