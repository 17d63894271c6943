package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// A node list renders each node's members (everything before its links) from the stored row,
// which costs far more than sending them: nodeCache keeps those rendered bytes, per node and
// per view (microversion and fields), under the node's revision. The database bumps a node's
// revision on every write of its row or its traits, by trigger, whoever writes (this server,
// another API server on the same PostgreSQL, a conductor, a lock release): a list reads the
// page's (id, revision) pairs first, serves the cached bytes of the nodes whose revision is
// the one cached, and reads and renders only the others. The database stays the one source of
// truth; the cache never answers without asking it.
//
// What the bytes do not hold is written per request: the links (they carry the request's base
// URL) and the conductor (it follows the hash ring, not the node). Callers whose view of a
// node is redacted by policy (a project-scoped caller without filter_threshold) are never
// served from it. The cache is bounded by a byte budget; the least recently used entries go
// first.

// defaultNodeCacheBytes is the budget when Options.NodeCacheBytes is 0: 10,000 detailed nodes
// at about 1.6 KB each, in one view, fit three times over.
const defaultNodeCacheBytes = 64 << 20

// nodeCacheOverhead is what an entry costs besides its bytes and strings (struct, map slot).
const nodeCacheOverhead = 160

type nodeCacheKey struct {
	id   int64
	view string // microversion and fields: see nodeView
}

// nodeCacheEntry is one node's rendered members in one view at one revision. Entries are never
// changed once they are in the cache, so their bytes may be read after the lock is released.
type nodeCacheEntry struct {
	key   nodeCacheKey
	rev   int64
	uuid  string // for the links and the next page's marker
	group string // conductor group, for the ring
	body  []byte // '{' and the members before the links, without a closing brace
	// prev and next link the entries from the most to the least recently used.
	prev, next *nodeCacheEntry
}

func (e *nodeCacheEntry) size() int64 {
	return int64(len(e.body)+len(e.uuid)+len(e.group)+len(e.key.view)) + nodeCacheOverhead
}

// nodeCache is an LRU map of nodeCacheEntry bounded by a byte budget.
type nodeCache struct {
	budget int64

	mu    sync.Mutex
	size  int64
	items map[nodeCacheKey]*nodeCacheEntry
	lru   nodeCacheEntry // sentinel: lru.next is the most recently used entry

	hits, misses, evictions atomic.Int64
}

func newNodeCache(budget int64) *nodeCache {
	c := &nodeCache{budget: budget, items: map[nodeCacheKey]*nodeCacheEntry{}}
	c.lru.next, c.lru.prev = &c.lru, &c.lru
	return c
}

func (c *nodeCache) unlink(e *nodeCacheEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (c *nodeCache) pushFront(e *nodeCacheEntry) {
	e.prev, e.next = &c.lru, c.lru.next
	c.lru.next.prev = e
	c.lru.next = e
}

// lookup sets out[i] to the entry of ids[i] in view when its revision is revs[i], and to nil
// otherwise. out has the length of ids.
func (c *nodeCache) lookup(view string, ids, revs []int64, out []*nodeCacheEntry) {
	hits := 0
	c.mu.Lock()
	for i, id := range ids {
		e := c.items[nodeCacheKey{id, view}]
		if e == nil || e.rev != revs[i] {
			out[i] = nil
			continue
		}
		c.unlink(e)
		c.pushFront(e)
		out[i] = e
		hits++
	}
	c.mu.Unlock()
	c.hits.Add(int64(hits))
	c.misses.Add(int64(len(ids) - hits))
}

// put stores entries, replacing any of the same node and view, and evicts the least recently
// used entries past the budget. An entry larger than the whole budget is not kept.
func (c *nodeCache) put(entries []*nodeCacheEntry) {
	evicted := 0
	c.mu.Lock()
	for _, e := range entries {
		if e.size() > c.budget {
			continue
		}
		if old := c.items[e.key]; old != nil {
			if old.rev > e.rev {
				continue // a newer state is already here (two lists raced)
			}
			c.unlink(old)
			c.size -= old.size()
		}
		c.items[e.key] = e
		c.pushFront(e)
		c.size += e.size()
	}
	for c.size > c.budget && c.lru.prev != &c.lru {
		old := c.lru.prev
		c.unlink(old)
		delete(c.items, old.key)
		c.size -= old.size()
		evicted++
	}
	c.mu.Unlock()
	c.evictions.Add(int64(evicted))
}

// nodeCacheStats is what the cache holds and how it was used.
type nodeCacheStats struct {
	Entries                 int
	Bytes                   int64
	Hits, Misses, Evictions int64
}

func (c *nodeCache) stats() nodeCacheStats {
	c.mu.Lock()
	st := nodeCacheStats{Entries: len(c.items), Bytes: c.size}
	c.mu.Unlock()
	st.Hits, st.Misses, st.Evictions = c.hits.Load(), c.misses.Load(), c.evictions.Load()
	return st
}

// nodeView names what, besides the node, the cached bytes depend on: the microversion and the
// fields shown (nil: all of them).
func nodeView(ver int, show []string) string {
	if show == nil {
		return strconv.Itoa(ver)
	}
	return strconv.Itoa(ver) + "?" + strings.Join(show, ",")
}

// writeCachedNodeList serves a node list (writeNodeList's arguments, parsed) through the cache:
// the page's ids and revisions are read, the nodes not cached at that revision are read and
// rendered, and every node is sent from its rendered bytes. Only for callers that see nodes
// unredacted.
func (s *Server) writeCachedNodeList(w http.ResponseWriter, r *http.Request, f sqlstore.NodeFilter, p listParams, show []string, path string) error {
	ctx := r.Context()
	ver := versionOf(ctx)
	view := nodeView(ver, show)
	revs, err := s.store.ListNodeRevisions(ctx, f, p.page)
	if err != nil {
		return err
	}
	ids, rv := make([]int64, len(revs)), make([]int64, len(revs))
	for i, x := range revs {
		ids[i], rv[i] = x.ID, x.Revision
	}
	entries := make([]*nodeCacheEntry, len(ids))
	s.cache.lookup(view, ids, rv, entries)
	var missing []int64
	for i, e := range entries {
		if e == nil {
			missing = append(missing, ids[i])
		}
	}
	if len(missing) > 0 {
		if s.afterRevisions != nil {
			s.afterRevisions()
		}
		raws, err := s.store.NodesRawByID(ctx, missing)
		if err != nil {
			return err
		}
		byID := make(map[int64]*sqlstore.RawNode, len(raws))
		for _, rn := range raws {
			byID[rn.Node.ID] = rn
		}
		same := len(raws) == len(missing)
		for i, id := range ids {
			if rn := byID[id]; entries[i] == nil && (rn == nil || rn.Revision != rv[i]) {
				same = false
				break
			}
		}
		if !same {
			// A node changed or went between the two reads, and may no longer match the
			// filter: read the page again in one query, as the uncached list does.
			raws, err = s.store.ListNodesRaw(ctx, f, p.page)
			if err != nil {
				return err
			}
			ids, rv, entries = ids[:0], rv[:0], make([]*nodeCacheEntry, len(raws))
			clear(byID)
			for _, rn := range raws {
				ids, rv = append(ids, rn.Node.ID), append(rv, rn.Revision)
				byID[rn.Node.ID] = rn
			}
			s.cache.lookup(view, ids, rv, entries)
		}
		if err := s.renderMissing(ctx, view, show, ids, entries, byID); err != nil {
			return err
		}
	}

	tail := newNodeTail(s.baseURL(r), ver, show)
	wantConductor := r.URL.Query().Get("conductor")
	var ringNode ironwork.Node // ConductorFor reads only its UUID and group
	conds := make([]string, len(entries))
	count, last := 0, ""
	for i, e := range entries {
		if e == nil {
			continue // undecodable: left out, as the uncached list does
		}
		if (tail.conductor || wantConductor != "") && s.opts.Ring != nil {
			ringNode.UUID, ringNode.ConductorGroup = e.uuid, e.group
			conds[i] = s.opts.Ring.ConductorFor(&ringNode)
		}
		if wantConductor != "" && conds[i] != wantConductor {
			entries[i] = nil
			continue
		}
		count, last = count+1, e.uuid
	}
	// The rest of the collection (the next links) as listBody builds it, made before the
	// first byte is sent so that nothing can fail once the status is out.
	var rest []byte
	for _, m := range s.listBodyOf(r, path, "nodes", "nodes_links", nil, count, p, last)[1:] {
		rest = append(rest, ',')
		rest = appendString(rest, m.k)
		rest = append(rest, ':')
		if rest, err = appendJSON(rest, m.v); err != nil {
			return fmt.Errorf("encode response: %w", err)
		}
	}

	out := s.newPageWriter(w)
	defer out.release()
	out.b = append(out.b, `{"nodes":[`...)
	first := true
	for i, e := range entries {
		if e == nil {
			continue
		}
		if !first {
			out.b = append(out.b, ',')
		}
		first = false
		out.b = append(out.b, e.body...)
		out.b = tail.append(out.b, e.uuid, conds[i])
		out.sendFull()
	}
	out.b = append(out.b, ']')
	out.b = append(out.b, rest...)
	out.b = append(out.b, '}')
	return out.finish()
}

// pageWriter sends a response that may be large (a page of a thousand detailed nodes is a few
// MiB) in pieces through one recycled buffer: memory the size of the page is never asked for,
// which on a cold process or after the buffers' pool was emptied by the collector costs more
// (fresh pages, faulted in and zeroed) than the rest of the page's work. A response that fits
// in the buffer is sent whole, with its Content-Length; a larger one goes out in chunks.
type pageWriter struct {
	s       *Server
	w       http.ResponseWriter
	bp      *[]byte
	b       []byte
	started bool
	err     error
}

// pageChunk is how much a pageWriter gathers before it sends.
const pageChunk = 60 << 10

func (s *Server) newPageWriter(w http.ResponseWriter) *pageWriter {
	bp := s.buffer()
	return &pageWriter{s: s, w: w, bp: bp, b: (*bp)[:0]}
}

// sendFull sends what was gathered once it reaches pageChunk. After a write error, it drops
// what it is given; finish reports the error.
func (p *pageWriter) sendFull() {
	if len(p.b) < pageChunk {
		return
	}
	if !p.started {
		p.w.Header().Set("Content-Type", "application/json")
		p.w.WriteHeader(http.StatusOK)
		p.started = true
	}
	if p.err == nil {
		_, p.err = p.w.Write(p.b)
	}
	p.b = p.b[:0]
}

// finish sends the rest: the whole response with its length when nothing was sent yet.
func (p *pageWriter) finish() error {
	if !p.started {
		return writeBody(p.w, http.StatusOK, p.b)
	}
	if p.err == nil && len(p.b) > 0 {
		_, p.err = p.w.Write(p.b)
	}
	p.b = p.b[:0]
	return p.err
}

func (p *pageWriter) release() {
	*p.bp = p.b
	p.s.recycle(p.bp)
}

// writeCachedNode serves one node (GET /v1/nodes/{ident} with fields parsed into show) through
// the cache: the node's id and revision are read, and its rendered members come from the cache
// at that revision or are read, rendered and cached. ok is false when the node's stored JSON
// cannot be decoded; the caller then serves it without the cache. Only for callers that see
// nodes unredacted.
func (s *Server) writeCachedNode(w http.ResponseWriter, r *http.Request, ident string, show []string) (ok bool, err error) {
	ctx := r.Context()
	ver := versionOf(ctx)
	view := nodeView(ver, show)
	rev, err := s.store.NodeRevisionOf(ctx, ident)
	if err != nil {
		return true, err
	}
	ids, revs := []int64{rev.ID}, []int64{rev.Revision}
	entries := make([]*nodeCacheEntry, 1)
	s.cache.lookup(view, ids, revs, entries)
	if entries[0] == nil {
		raws, err := s.store.NodesRawByID(ctx, ids)
		if err != nil {
			return true, err
		}
		if len(raws) == 0 { // deleted since its revision was read
			return true, ironwork.Errorf(ironwork.ENOTFOUND, "Node %s could not be found.", ident)
		}
		// Rendered at the revision just read, which may be newer than rev: the entry
		// carries the one its bytes were rendered from.
		byID := map[int64]*sqlstore.RawNode{rev.ID: raws[0]}
		if err := s.renderMissing(ctx, view, show, ids, entries, byID); err != nil {
			return true, err
		}
		if entries[0] == nil {
			return false, nil
		}
	}
	e := entries[0]
	cond := ""
	if nodeShowsConductor(ver, show) && s.opts.Ring != nil {
		cond = s.opts.Ring.ConductorFor(&ironwork.Node{UUID: e.uuid, ConductorGroup: e.group})
	}
	bp := s.buffer()
	defer s.recycle(bp)
	b := append((*bp)[:0], e.body...)
	b = appendNodeTail(b, s.baseURL(r), e.uuid, cond, ver, show)
	*bp = b
	return true, writeBody(w, http.StatusOK, b)
}

// nodeTail writes what follows a node's cached members, as appendNodeTail does, from a
// template made once per request: the parts between the places where the node's UUID and
// conductor go.
type nodeTail struct {
	conductor bool     // the conductor member is shown: it goes after links
	links     []string // parts around the UUID up to the conductor member
	subs      []string // parts around the UUID after it, the last one closing the node
	slow      bool     // the base URL needs escaping: use appendNodeTail
	base      string
	ver       int
	fields    []string
}

// uuidMark stands for the node's UUID in the template; no base URL contains it (a base URL
// that does is sent through appendNodeTail).
const uuidMark = "{uuid}"

func newNodeTail(base string, ver int, fields []string) *nodeTail {
	t := &nodeTail{conductor: nodeShowsConductor(ver, fields), base: base, ver: ver, fields: fields}
	if !plainText(base) || strings.Contains(base, uuidMark) {
		t.slow = true
		return t
	}
	// appendNodeTail with the mark for the UUID and no conductor member: split at the marks,
	// and at the end of the links (where the conductor member would go).
	full := string(appendNodeTail([]byte{'{'}, base, uuidMark, "", ver, fields))[1:]
	links := string(appendNodeTail([]byte{'{'}, base, uuidMark, "", ver, []string{}))[1:]
	links = links[:len(links)-1] // without the closing brace
	rest := full[len(links):]
	if t.conductor {
		rest = strings.TrimPrefix(rest, `,"conductor":null`)
	}
	t.links = strings.Split(links, uuidMark)
	t.subs = strings.Split(rest, uuidMark)
	return t
}

// append appends the tail of the node uuid whose conductor is cond ("" for none).
func (t *nodeTail) append(b []byte, uuid, cond string) []byte {
	if t.slow {
		return appendNodeTail(b, t.base, uuid, cond, t.ver, t.fields)
	}
	if b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	for i, p := range t.links {
		if i > 0 {
			b = append(b, uuid...)
		}
		b = append(b, p...)
	}
	if t.conductor {
		b = append(b, `,"conductor":`...)
		if cond == "" {
			b = append(b, "null"...)
		} else {
			b = appendString(b, cond)
		}
	}
	for i, p := range t.subs {
		if i > 0 {
			b = append(b, uuid...)
		}
		b = append(b, p...)
	}
	return b
}

// renderMissing renders the nodes of the page whose entries are nil from their rows in byID,
// sets their entries and caches them. A node that cannot be decoded keeps a nil entry.
func (s *Server) renderMissing(ctx context.Context, view string, show []string, ids []int64, entries []*nodeCacheEntry, byID map[int64]*sqlstore.RawNode) error {
	var (
		st      storedNode
		scratch []byte
		fresh   []*nodeCacheEntry
	)
	for i, e := range entries {
		rn := byID[ids[i]]
		if e != nil || rn == nil {
			continue
		}
		if err := st.load(s, rn, show); err != nil {
			// As ListNodes: the node is left out (and is not the marker of the next page).
			s.log.ErrorContext(ctx, "skip undecodable node", "node", rn.Node.UUID, "error", err)
			continue
		}
		var err error
		if scratch, err = appendJSON(scratch[:0], s.renderNodeBody(ctx, rn.Node, show, st.value)); err != nil {
			return fmt.Errorf("encode node: %w", err)
		}
		e = &nodeCacheEntry{key: nodeCacheKey{ids[i], view}, rev: rn.Revision, uuid: rn.Node.UUID,
			group: rn.Node.ConductorGroup, body: bytes.Clone(scratch[:len(scratch)-1])} // without the closing brace
		entries[i] = e
		fresh = append(fresh, e)
	}
	s.cache.put(fresh)
	return nil
}
