package httpapi

// UnguardedRoutes lists the routes s serves that routeGuards does not name.
func (s *Server) UnguardedRoutes() []string { return s.unguarded }
