// Package httpapi serves Ironic's REST API v1: microversion negotiation, the node, port,
// portgroup, chassis, driver and conductor resources, JSON PATCH, paging and Ironic's error
// bodies. It validates requests and renders responses; it reads and writes records through the
// store and must not talk to hardware: work on nodes goes through the conductor.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/policy"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// Ring maps a node to the hostname of the conductor that manages it.
type Ring interface {
	ConductorFor(n *ironwork.Node) string
}

// Authenticator checks a request's credentials. It returns an EUNAUTHORIZED or EINVALID error
// when they are missing or wrong.
type Authenticator interface {
	Authenticate(r *http.Request) (policy.Principal, error)
}

// Options configures a Server.
type Options struct {
	Store   *sqlstore.Store
	Drivers ironwork.DriverConfig
	Logger  *slog.Logger
	// Auth checks credentials on every non-public route; nil means no authentication (every
	// caller is an unrestricted administrator, as with Ironic's noauth).
	Auth Authenticator
	// Policy decides what an authenticated caller may do; nil means Ironic's default rules.
	Policy *policy.Enforcer
	// ProjectAdminsCannotManageOwnNodes turns off Ironic's project_admin_can_manage_own_nodes
	// (on by default): project administrators creating nodes owned by their project and
	// deleting them.
	ProjectAdminsCannotManageOwnNodes bool
	// Ring names each node's conductor; nil leaves the conductor field null.
	Ring Ring
	// Conductor does the work on nodes; nil answers 503 to requests that need it.
	Conductor Conductor
	// PublicURL is the base of links in responses; empty means the request's own scheme and host.
	PublicURL string
	// MaxBodyBytes caps request bodies (default 1 MiB, as Ironic's max_json_body_size).
	MaxBodyBytes int64
	// ConductorTimeout is how old a conductor's heartbeat may be for it to count as alive.
	ConductorTimeout time.Duration
	// MaxLimit is the largest page size (default 1000, as Ironic's [api]max_limit).
	MaxLimit int
	// Metrics records every request; nil records nothing.
	Metrics Metrics
	// MetricsHandler, when set, serves GET /metrics behind the API's authentication.
	MetricsHandler http.Handler
	// Events streams node changes at EventsPath; nil answers 503 there.
	Events EventSource
	// NodeCacheBytes bounds the cache of rendered nodes that node lists are served from
	// (nodecache.go); 0 means 64 MiB and a negative value turns the cache off.
	NodeCacheBytes int64
	// MaxConcurrent bounds the requests handled at once; the others wait their turn in order
	// of arrival (see admit). 0 means DefaultMaxConcurrent, a negative value no bound.
	MaxConcurrent int
}

// DefaultMaxConcurrent is the default bound of requests handled at once: the size of the
// PostgreSQL connection pool (sqlstore), so that requests queue here, in order, rather than
// for a database connection, which Go's database/sql hands to a random waiter.
const DefaultMaxConcurrent = 32

// Metrics records the API's requests: the method ("other" for a non-standard one), the route
// template that matched ("GET
// /v1/nodes/{ident}" gives "/v1/nodes/{ident}"; "unmatched" when none did), the status and
// how long the answer took.
type Metrics interface {
	APIRequest(method, route string, status int, d time.Duration)
}

// Server is the API's HTTP handler.
type Server struct {
	store   *sqlstore.Store
	drivers ironwork.DriverConfig
	log     *slog.Logger
	opts    Options
	policy  *policy.Enforcer
	mux     *http.ServeMux
	bufs    sync.Pool // response buffers
	// nodeTable is the node field table, built once.
	nodeTable fieldTable[ironwork.Node]
	// nodeStored maps each field of nodeTable to its index in sqlstore.NodeJSONFields, or -1.
	nodeStored []int
	// cache holds rendered nodes for lists; nil when turned off.
	cache *nodeCache
	// pre holds new nodes to render into cache ahead of the lists (prerender.go).
	pre prerenderQueue
	// afterRevisions, when set (by tests), runs between a cached list's two reads.
	afterRevisions func()
	// unguarded lists the registered routes routeGuards does not name (a test keeps it empty).
	unguarded []string

	// gate holds a token for each request being handled (nil: no bound); waiting counts the
	// requests queued for one (admit).
	gate    chan struct{}
	waiting atomic.Int64
	// admitted, when set (tests), runs in each request admit lets through, before its handler.
	admitted func(*http.Request)
}

// New returns a Server for the given options.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.ConductorTimeout <= 0 {
		opts.ConductorTimeout = 60 * time.Second
	}
	if opts.MaxLimit <= 0 {
		opts.MaxLimit = 1000
	}
	if opts.Policy == nil {
		opts.Policy = policy.New("")
	}
	s := &Server{store: opts.Store, drivers: opts.Drivers, log: opts.Logger, opts: opts, mux: http.NewServeMux(),
		nodeTable: nodeFields(), policy: opts.Policy}
	s.nodeStored = storedSlots(s.nodeTable)
	switch {
	case opts.MaxConcurrent == 0:
		s.gate = make(chan struct{}, DefaultMaxConcurrent)
	case opts.MaxConcurrent > 0:
		s.gate = make(chan struct{}, opts.MaxConcurrent)
	}
	switch {
	case opts.NodeCacheBytes == 0:
		s.cache = newNodeCache(defaultNodeCacheBytes)
	case opts.NodeCacheBytes > 0:
		s.cache = newNodeCache(opts.NodeCacheBytes)
	}
	s.routes()
	return s
}

// handlerFunc is an API handler: it returns an error instead of writing one.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) handle(pattern string, h handlerFunc) {
	if _, ok := routeGuards[pattern]; !ok {
		s.unguarded = append(s.unguarded, pattern)
	}
	h = s.authorize(pattern, h)
	if !ungatedRoutes[pattern] {
		h = s.admit(h)
	}
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// ungatedRoutes take no turn of the gate (admit): the event stream and the console's websocket
// hold their request open for as long as the client watches, and would keep their turn; the
// metrics must answer while requests queue, since they are how an operator sees the queue.
var ungatedRoutes = map[string]bool{"GET " + EventsPath: true, "GET /v1/nodes/{ident}/console/ws": true, "GET /metrics": true}

// admit runs h in turn: at most cap(s.gate) requests at once, the others waiting in order of
// arrival (a channel's blocked senders are served first in, first out), each until its handler
// returns or hands an operation to a conductor. Under a crowd this keeps the slowest answers
// near the average, where unbounded concurrency let requests overtake each other at the
// database pool, some waiting many times longer than the rest (docs/benchmarks.md, stop 20). A
// request whose client goes away while it waits is dropped without running.
func (s *Server) admit(h handlerFunc) handlerFunc {
	if s.gate == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		select {
		case s.gate <- struct{}{}:
		default:
			s.waiting.Add(1)
			select {
			case s.gate <- struct{}{}:
				s.waiting.Add(-1)
			case <-r.Context().Done():
				s.waiting.Add(-1)
				// Nobody to answer; the status is for the metrics and the log (nginx's
				// "client closed request").
				w.WriteHeader(499)
				return nil
			}
		}
		// The turn is given back when the handler returns, or earlier when it hands an
		// operation to a conductor (which may wait on a BMC): the rest of such a request is
		// waiting, and a few slow BMCs must not hold every turn.
		var once sync.Once
		release := func() { once.Do(func() { <-s.gate }) }
		defer release()
		r = r.WithContext(conductor.WithWaitHook(r.Context(), release))
		if s.admitted != nil {
			s.admitted(r)
		}
		return h(w, r)
	}
}

// Admission reports the requests holding a turn (admit) and those waiting for one, for the
// metrics. Both are 0 when requests are not bounded.
func (s *Server) Admission() (running, waiting int) {
	return len(s.gate), int(s.waiting.Load())
}

// resource is the handlers of a collection's usual routes; detail may be nil.
type resource struct{ list, detail, create, get, patch, del handlerFunc }

// resource registers a collection's usual routes at path: its list (and detail list), create,
// and the get, patch and delete of one member, {ident}.
func (s *Server) resource(path string, r resource) {
	s.handle("GET "+path, r.list)
	if r.detail != nil {
		s.handle("GET "+path+"/detail", r.detail)
	}
	s.handle("POST "+path, r.create)
	s.handle("GET "+path+"/{ident}", r.get)
	s.handle("PATCH "+path+"/{ident}", r.patch)
	s.handle("DELETE "+path+"/{ident}", r.del)
}

func (s *Server) routes() {
	s.handle("GET /{$}", s.root)
	s.handle("GET /v1", s.v1)
	s.handle("GET /v1/{$}", s.v1)
	s.handle("GET /v1/shards", s.shards)
	if s.opts.MetricsHandler != nil {
		s.handle("GET /metrics", func(w http.ResponseWriter, r *http.Request) error {
			s.opts.MetricsHandler.ServeHTTP(w, r)
			return nil
		})
	}
	s.nodeRoutes()
	s.portRoutes()
	s.portgroupRoutes()
	s.chassisRoutes()
	s.driverRoutes()
	s.agentRoutes()
	s.inspectionRoutes()
	s.biosRoutes()
	s.firmwareRoutes()
	s.allocationRoutes()
	s.vifRoutes()
	s.vmediaRoutes()
	s.deployTemplateRoutes()
	s.inspectionRuleRoutes()
	s.consoleRoutes()
	s.eventRoutes()
	s.passthruRoutes()
	s.indicatorRoutes()
	s.volumeRoutes()
	s.externalEventRoutes()
	s.childrenRoutes()
	s.runbookRoutes()

	s.handle("/", s.notFound)
}

// notFound answers paths nothing else serves: 405 where the path exists for another method.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) error {
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/" {
			return errMethodNotAllowed
		}
	}
	return ironwork.Errorf(ironwork.ENOTFOUND, "The resource could not be found.")
}

// publicRoutes need no credentials, as in Ironic.
func publicRoute(path string) bool {
	switch path {
	case "", "/", "/v1", "/v1/lookup", "/v1/continue_inspection":
		return true
	}
	return strings.HasPrefix(path, "/v1/heartbeat/")
}

// ServeHTTP applies the middleware every request passes through: request id, recovery, path
// clean-up, version negotiation, authentication and the body size cap.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	reqID := newRequestID()
	h.Set("X-OpenStack-Request-Id", reqID)
	h.Set("OpenStack-Request-Id", reqID)
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	// routed is the request the mux saw (it records the matched pattern there); until then,
	// the request itself, whose route is looked up.
	routed := r
	r = r.WithContext(conductor.WithRequester(r.Context(), conductor.Requester{RequestID: reqID}))
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", p, "request_id", reqID)
			if !sw.wrote {
				s.writeError(sw, r, errors.New("panic"))
			}
		}
		d := time.Since(start)
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", sw.status,
			"duration", d, "request_id", reqID, "user", conductor.RequesterOf(r.Context()).User)
		if s.opts.Metrics != nil {
			s.opts.Metrics.APIRequest(metricMethod(r.Method), s.route(routed), sw.status, d)
		}
	}()
	if len(r.URL.Path) > 1 && strings.HasSuffix(r.URL.Path, "/") && r.URL.Path != "/v1/" {
		r.URL.Path = strings.TrimRight(r.URL.Path, "/")
		r.URL.RawPath = ""
	}
	minor, err := negotiate(r.Header)
	h.Set("X-OpenStack-Ironic-API-Minimum-Version", versionString(MinMinor))
	h.Set("X-OpenStack-Ironic-API-Maximum-Version", versionString(MaxMinor))
	if err != nil {
		s.writeError(sw, r, err)
		return
	}
	h.Set("X-OpenStack-Ironic-API-Version", versionString(minor))
	if s.opts.Auth != nil && !publicRoute(strings.TrimSuffix(r.URL.Path, "/")) {
		who, err := s.opts.Auth.Authenticate(r)
		if err != nil {
			s.writeError(sw, r, err)
			return
		}
		ctx := WithPrincipal(r.Context(), who)
		r = r.WithContext(conductor.WithRequester(ctx, conductor.Requester{RequestID: reqID, User: who.User()}))
	}
	if err := checkRequestTarget(r); err != nil {
		s.writeError(sw, r, err)
		return
	}
	if r.ContentLength > s.opts.MaxBodyBytes {
		s.writeError(sw, r, ironwork.Errorf(ironwork.ETOOLARGE, "Request body is larger than %d bytes.", s.opts.MaxBodyBytes))
		return
	}
	r.Body = http.MaxBytesReader(sw, r.Body, s.opts.MaxBodyBytes)
	r = r.WithContext(context.WithValue(r.Context(), versionKey{}, minor))
	routed = r
	s.mux.ServeHTTP(sw, r)
}

// route is the route template of a request for metrics: the pattern the mux matched (or
// would match, for a request refused before routing) without its method.
func (s *Server) route(r *http.Request) string {
	pattern := r.Pattern
	if pattern == "" {
		_, pattern = s.mux.Handler(r)
	}
	if _, path, ok := strings.Cut(pattern, " "); ok {
		pattern = path
	}
	switch pattern {
	case "", "/":
		return "unmatched"
	case "/{$}":
		return "/"
	}
	return pattern
}

// metricMethod is a request's method as a metric label: the methods HTTP defines, and "other"
// for anything a client made up (which would otherwise make one series per invention).
func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete,
		http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// logFor is the API's logger for a request: its lines carry the request id.
func (s *Server) logFor(r *http.Request) *slog.Logger {
	if id := conductor.RequesterOf(r.Context()).RequestID; id != "" {
		return s.log.With("request_id", id)
	}
	return s.log
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap gives http.ResponseController (flushes, deadlines, websocket upgrades) the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// newRequestID is a request id as Ironic makes them: "req-" and a random (version 4) UUID.
func newRequestID() string { return "req-" + uuid.NewString() }

// baseURL returns the public base URL for links, without a trailing slash.
func (s *Server) baseURL(r *http.Request) string {
	if s.opts.PublicURL != "" {
		return strings.TrimRight(s.opts.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
