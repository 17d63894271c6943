package httpapi

import "net/http"

// UnguardedRoutes lists the routes s serves that routeGuards does not name.
func (s *Server) UnguardedRoutes() []string { return s.unguarded }

// NodeCacheUse reports how many nodes lists served from the node cache and how many they
// rendered, and what the cache holds (entries, bytes).
func (s *Server) NodeCacheUse() (hits, misses int64, entries int, bytes int64) {
	if s.cache == nil {
		return 0, 0, 0, 0
	}
	st := s.cache.stats()
	return st.Hits, st.Misses, st.Entries, st.Bytes
}

// RunBetweenListReads has f run in every cached node list that misses nodes, between the read
// of the page's revisions and the read of the missing nodes.
func (s *Server) RunBetweenListReads(f func()) { s.afterRevisions = f }

// OnAdmit has f run in every request admitted to its turn, before its handler.
func (s *Server) OnAdmit(f func(*http.Request)) { s.admitted = f }
