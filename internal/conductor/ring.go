package conductor

import (
	"cmp"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"sync"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// partitionsPerHost is the number of points each conductor takes on the ring (Ironic's
// hash_partition_exponent 5 gives 2^5).
const partitionsPerHost = 32

// Ring is a consistent hash ring per conductor group: it maps each node to one live conductor
// of the node's group, and moves only about 1/N of the nodes when a conductor joins or leaves.
type Ring struct {
	mu     sync.RWMutex
	groups map[string]*groupRing
	gen    uint64 // counts the Sets that changed the members
}

type groupRing struct {
	points []uint64
	owner  map[uint64]string
	hosts  []string
}

// NewRing returns an empty ring.
func NewRing() *Ring { return &Ring{groups: map[string]*groupRing{}} }

// hash64 places a key (a node's UUID, a conductor's point) on the ring: the hash the store
// keeps of every node as its ring key (sqlstore.RingKey), read unsigned. It must stay that
// hash: the passes over the fleet read the ranges Ranges gives from the stored keys.
func hash64(s string) uint64 { return uint64(sqlstore.RingKey(s)) }

// Set replaces the ring's members: the live conductors of each group.
func (r *Ring) Set(members map[string][]string) {
	groups := make(map[string]*groupRing, len(members))
	for group, hosts := range members {
		g := &groupRing{owner: map[uint64]string{}, hosts: slices.Sorted(slices.Values(hosts))}
		for _, h := range g.hosts {
			for i := range partitionsPerHost {
				p := hash64(h + "-" + strconv.Itoa(i))
				if prev, taken := g.owner[p]; taken && prev < h {
					continue
				}
				g.owner[p] = h
				g.points = append(g.points, p)
			}
		}
		sort.Slice(g.points, func(i, j int) bool { return g.points[i] < g.points[j] })
		groups[group] = g
	}
	r.mu.Lock()
	if !sameMembers(r.groups, groups) {
		r.gen++
	}
	r.groups = groups
	r.mu.Unlock()
}

// Generation counts the changes of the ring's members: it moves when Set changes who serves
// which group, and only then. Equal generations mean every node has the owner it had.
func (r *Ring) Generation() uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.gen
}

func sameMembers(a, b map[string]*groupRing) bool {
	return maps.EqualFunc(a, b, func(x, y *groupRing) bool { return slices.Equal(x.hosts, y.hosts) })
}

// ConductorFor returns the conductor that manages n, or "" when its group has no live one.
func (r *Ring) ConductorFor(n *ironwork.Node) string {
	return r.Owner(n.ConductorGroup, n.UUID)
}

// Owner returns the conductor of the group that owns key.
func (r *Ring) Owner(group, key string) string {
	return r.OwnerOfRingKey(group, sqlstore.RingKey(key))
}

// OwnerOfRingKey is Owner for a key's stored ring key (sqlstore.RingKey), which spares the hash.
func (r *Ring) OwnerOfRingKey(group string, ringKey int64) string {
	r.mu.RLock()
	g := r.groups[group]
	r.mu.RUnlock()
	if g == nil || len(g.points) == 0 {
		return ""
	}
	h := uint64(ringKey)
	i := sort.Search(len(g.points), func(i int) bool { return g.points[i] >= h })
	if i == len(g.points) {
		i = 0
	}
	return g.owner[g.points[i]]
}

// Share is the fraction (0 to 1) of the group's hash space, and so of its nodes on average,
// that host owns.
func (r *Ring) Share(group, host string) float64 {
	r.mu.RLock()
	g := r.groups[group]
	r.mu.RUnlock()
	if g == nil || len(g.points) == 0 {
		return 0
	}
	// Each point owns the keys from the previous point (exclusive) up to itself; the first
	// point also owns the keys past the last one. Spans are summed exactly in uint64 (the
	// wrap-around span of the first point is its uint64 difference with the last), which
	// cannot hold the whole space: a host that owns every point has all of it.
	var owned uint64
	all := true
	for i, p := range g.points {
		if g.owner[p] != host {
			all = false
			continue
		}
		prev := g.points[(i+len(g.points)-1)%len(g.points)]
		owned += p - prev
	}
	if all {
		return 1
	}
	return float64(owned) / math.Exp2(64)
}

// Ranges returns the part of group's hash space that host owns as inclusive ranges of ring
// keys (sqlstore.RingKey, the hash read as a signed number, as the store keeps it), ascending
// and neither overlapping nor touching: a key is host's exactly when it falls in one of them.
// None when host is not a member of the group.
func (r *Ring) Ranges(group, host string) []sqlstore.KeyRange {
	r.mu.RLock()
	g := r.groups[group]
	r.mu.RUnlock()
	if g == nil || len(g.points) == 0 {
		return nil
	}
	// Point i owns the hashes after point i-1 up to itself; the first point also owns those
	// after the last. Spans of unsigned hashes first, ascending.
	type span struct{ lo, hi uint64 }
	var spans []span
	for i, p := range g.points {
		switch {
		case g.owner[p] != host:
		case i == 0:
			spans = append(spans, span{0, p})
		case g.points[i-1] < p: // equal: a repeated point owns nothing more
			spans = append(spans, span{g.points[i-1] + 1, p})
		}
	}
	if last := g.points[len(g.points)-1]; g.owner[g.points[0]] == host && last < math.MaxUint64 {
		spans = append(spans, span{last + 1, math.MaxUint64})
	}
	// As signed ring keys: a span across 2^63 splits in two; sorted, then joined where they
	// touch (the wrap-around span and the first point's meet at -1 and 0).
	var out []sqlstore.KeyRange
	for _, s := range spans {
		if s.lo < 1<<63 && s.hi >= 1<<63 {
			out = append(out, sqlstore.KeyRange{Lo: int64(s.lo), Hi: math.MaxInt64}, sqlstore.KeyRange{Lo: math.MinInt64, Hi: int64(s.hi)})
			continue
		}
		out = append(out, sqlstore.KeyRange{Lo: int64(s.lo), Hi: int64(s.hi)})
	}
	slices.SortFunc(out, func(a, b sqlstore.KeyRange) int { return cmp.Compare(a.Lo, b.Lo) })
	joined := out[:0]
	for _, k := range out {
		if n := len(joined); n > 0 && joined[n-1].Hi != math.MaxInt64 && joined[n-1].Hi+1 == k.Lo {
			joined[n-1].Hi = k.Hi
			continue
		}
		joined = append(joined, k)
	}
	return joined
}

// Groups returns the conductor groups the ring knows.
func (r *Ring) Groups() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.groups))
}
