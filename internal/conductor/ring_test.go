package conductor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
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

// TestRingRangesAreExactlyTheOwnersKeys: for rings of one to six conductors, a key is in one
// of a conductor's Ranges exactly when Owner gives it that conductor, for random node UUIDs
// and for the hashes at and around every ring point, the ends of the hash space and its
// middle (where unsigned hashes turn negative as stored keys); the members' ranges cover the
// whole space without overlapping; a host outside the group has none.
func TestRingRangesAreExactlyTheOwnersKeys(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for members := 1; members <= 6; members++ {
		r := NewRing()
		var hosts []string
		for i := range members {
			hosts = append(hosts, fmt.Sprintf("conductor-%d.example", i))
		}
		r.Set(map[string][]string{"g": hosts})
		probes := []int64{math.MinInt64, math.MinInt64 + 1, -1, 0, 1, math.MaxInt64 - 1, math.MaxInt64}
		for _, h := range hosts {
			for i := range partitionsPerHost {
				p := int64(hash64(h + "-" + strconv.Itoa(i)))
				probes = append(probes, p-1, p, p+1)
			}
		}
		for range 2000 {
			probes = append(probes, sqlstore.RingKey(fmt.Sprintf("%08x-0000-4000-8000-%012x", rng.Uint32(), rng.Uint64()>>16)))
		}
		ranges := map[string][]sqlstore.KeyRange{}
		var covered uint64 // keys covered by all hosts' ranges, modulo 2^64 (the whole space wraps to 0)
		for _, h := range hosts {
			ranges[h] = r.Ranges("g", h)
			for i, k := range ranges[h] {
				if k.Lo > k.Hi || i > 0 && ranges[h][i-1].Hi >= k.Lo-1 {
					t.Fatalf("%d members: %s's ranges are not ascending, separate and non-empty: %+v", members, h, ranges[h])
				}
				covered += uint64(k.Hi) - uint64(k.Lo) + 1
			}
		}
		if covered != 0 {
			t.Errorf("%d members: the ranges cover %d keys, want all 2^64", members, covered)
		}
		for _, key := range probes {
			owner := r.OwnerOfRingKey("g", key)
			in := 0
			for _, h := range hosts {
				if slices.ContainsFunc(ranges[h], func(k sqlstore.KeyRange) bool { return key >= k.Lo && key <= k.Hi }) {
					in++
					if h != owner {
						t.Fatalf("%d members: key %d is in %s's ranges, Owner gives %s", members, key, h, owner)
					}
				}
			}
			if in != 1 {
				t.Fatalf("%d members: key %d is in the ranges of %d hosts, want 1", members, key, in)
			}
		}
		if got := r.Ranges("g", "not-a-member"); got != nil {
			t.Errorf("a host outside the group has ranges %+v", got)
		}
		if got := r.Ranges("other", hosts[0]); got != nil {
			t.Errorf("a group without conductors has ranges %+v", got)
		}
	}
	// One conductor owns everything: one range, the whole space.
	r := NewRing()
	r.Set(map[string][]string{"": {"only"}})
	if got := r.Ranges("", "only"); len(got) != 1 || got[0] != (sqlstore.KeyRange{Lo: math.MinInt64, Hi: math.MaxInt64}) {
		t.Errorf("a lone conductor's ranges: %+v, want the whole space", got)
	}
}
