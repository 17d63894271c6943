package conductor

import (
	"fmt"
	"math"
	"testing"

	"github.com/ironwork/ironwork"
)

func TestRingSpreadsNodesAndMovesFewWhenAConductorLeaves(t *testing.T) {
	r := NewRing()
	hosts := []string{"c1", "c2", "c3", "c4"}
	r.Set(map[string][]string{"": hosts, "rack2": {"r2-a"}})
	const n = 20000
	before := map[string]string{}
	count := map[string]int{}
	for i := range n {
		key := fmt.Sprintf("node-%05d", i)
		owner := r.ConductorFor(&ironwork.Node{UUID: key})
		before[key] = owner
		count[owner]++
	}
	for _, h := range hosts {
		share := float64(count[h]) / n
		if math.Abs(share-0.25) > 0.12 {
			t.Errorf("%s owns %.1f%% of the nodes, want about 25%%", h, share*100)
		}
	}
	if got := r.ConductorFor(&ironwork.Node{UUID: "x", ConductorGroup: "rack2"}); got != "r2-a" {
		t.Errorf("a node of group rack2 maps to %q", got)
	}
	if got := r.ConductorFor(&ironwork.Node{UUID: "x", ConductorGroup: "nowhere"}); got != "" {
		t.Errorf("a group without conductors maps to %q", got)
	}

	r.Set(map[string][]string{"": {"c1", "c2", "c4"}})
	moved := 0
	for key, old := range before {
		now := r.ConductorFor(&ironwork.Node{UUID: key})
		if now == "c3" {
			t.Fatalf("node %s still maps to the departed conductor", key)
		}
		if old != "c3" && now != old {
			moved++
		}
	}
	if moved != 0 {
		t.Errorf("%d nodes of surviving conductors moved; consistent hashing moves only the departed one's", moved)
	}
}

// TestRingShareMatchesTheNodesEachConductorGets checks Share against the fraction of 20,000
// node UUIDs the ring maps to each conductor: the shares sum to 1 and each is close to what
// the nodes show.
func TestRingShareMatchesTheNodesEachConductorGets(t *testing.T) {
	r := NewRing()
	hosts := []string{"c1", "c2", "c3"}
	r.Set(map[string][]string{"": hosts, "solo": {"s1"}})
	const n = 20000
	count := map[string]int{}
	for i := range n {
		count[r.ConductorFor(&ironwork.Node{UUID: fmt.Sprintf("%08x-node", i*7919)})]++
	}
	sum := 0.0
	for _, h := range hosts {
		share := r.Share("", h)
		sum += share
		seen := float64(count[h]) / n
		t.Logf("%s: share %.4f, nodes %.4f", h, share, seen)
		if math.Abs(share-seen) > 0.03 {
			t.Errorf("%s: Share %.4f but %.4f of the nodes", h, share, seen)
		}
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Errorf("shares sum to %v, want 1", sum)
	}
	if got := r.Share("solo", "s1"); got != 1 {
		t.Errorf("the only conductor of a group has share %v, want 1", got)
	}
	if got := r.Share("", "nobody"); got != 0 {
		t.Errorf("a stranger has share %v", got)
	}
	if got := r.Share("nowhere", "c1"); got != 0 {
		t.Errorf("share in an empty group: %v", got)
	}
}
