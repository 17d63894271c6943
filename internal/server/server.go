package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/console"
	"github.com/ironwork/ironwork/internal/driver/ipmi"
	"github.com/ironwork/ironwork/internal/events"
	"github.com/ironwork/ironwork/internal/httpapi"
	"github.com/ironwork/ironwork/internal/inspection"
	"github.com/ironwork/ironwork/internal/metrics"
	"github.com/ironwork/ironwork/internal/policy"
	"github.com/ironwork/ironwork/internal/rpc"
	"github.com/ironwork/ironwork/internal/sqlstore"
	"github.com/ironwork/ironwork/internal/webui"
)

// Server is a running Ironwork process: the API, a conductor, or both.
type Server struct {
	cfg    Config
	log    *slog.Logger
	store  *sqlstore.Store
	cond   *conductor.Conductor // nil for role api
	router *rpc.Router          // nil for role conductor
	ln     net.Listener         // the API's; nil for role conductor
	rpcLn  net.Listener         // the conductor's JSON-RPC; nil for role api
	https  []*http.Server
	// ipmiSessions keeps RMCP+ sessions open between operations on the same BMC.
	ipmiSessions *ipmi.Sessions
	// boot runs the network boot services; nil without a provisioning interface.
	boot *bootServices
	// agentLn serves the agent's endpoints on the provisioning network when the API does
	// not listen where agents can reach it; nil otherwise.
	agentLn  net.Listener
	agentSrv *http.Server
	// rules runs the inspection rules on every inventory the conductor stores.
	rules *inspection.Hook
	// metrics are this process's Prometheus instruments; metricsLn and metricsSrv serve them
	// on metrics_listen (nil when they are served on the API's address).
	metrics    *metrics.Metrics
	metricsLn  net.Listener
	metricsSrv *http.Server
	// watcher feeds the events stream with the changes other processes make, and hub is the
	// stream's; nil for role conductor.
	watcher *events.Watcher
	hub     *events.Hub
}

// NewLogger returns the logger the configuration asks for, writing to w.
func NewLogger(cfg Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// Start validates cfg, opens the database, starts the conductor (unless the role is api) and
// opens the listeners. The caller runs Serve and finally Close.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (s *Server, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	if cfg.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("hostname: %w", err)
		}
		cfg.Hostname = h
	}
	drivers, _ := cfg.DriverConfig()
	store, err := sqlstore.Open(ctx, cfg.DatabaseURL(), log)
	if err != nil {
		return nil, err
	}
	s = &Server{cfg: cfg, log: log, store: store, metrics: metrics.New(prometheus.NewRegistry())}
	started := s // the named result is nil on the error returns below
	defer func() {
		if err != nil {
			started.Close()
		}
	}()

	if s.rules, err = startInspectionRules(ctx, cfg.InspectionRules, store, log); err != nil {
		return nil, err
	}

	if cfg.Role != "conductor" {
		// An API server's first concurrent requests would otherwise each wait for a new
		// PostgreSQL backend (sqlstore.Store.Warm): it opens a connection for every request it
		// admits at once (at most the pool's size). A conductor's pool grows with its work.
		// Measured on a fresh server at 673 requests/s (docs/benchmarks.md, stop 22): 2.5 s of
		// slow answers without, 1.3 s with 8 warmed, 0.5 s with 32.
		warm := cfg.APIMaxConcurrency
		if warm <= 0 {
			warm = 32
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := store.Warm(wctx, warm)
		cancel()
		if err != nil {
			log.Warn("database connections not warmed; the first requests may be slow", "error", err)
		}
		// The API's listener opens first: with port 0 its real port is what nodes' agents are
		// told to call.
		if s.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
		}
		if host, port, _ := net.SplitHostPort(cfg.Listen); port == "0" {
			_, port, _ = net.SplitHostPort(s.ln.Addr().String())
			cfg.Listen = net.JoinHostPort(host, port)
			s.cfg.Listen = cfg.Listen
		}
		if cfg.TLSCertFile != "" {
			// HTTPS: net/http sees the *tls.Conn itself (so requests know they came over TLS);
			// its few answers before any handler runs stay plain text.
			tc, err := apiTLSConfig(cfg.TLSCertFile, cfg.TLSKeyFile)
			if err != nil {
				s.ln.Close()
				return nil, err
			}
			s.ln = tls.NewListener(s.ln, tc)
		} else {
			// Answers net/http gives before any handler runs (an oversize header) get Ironic's body.
			s.ln = httpapi.ErrorListener(s.ln)
		}
	}
	sealer, err := rpcSealer(ctx, cfg, store)
	if err != nil {
		return nil, err
	}
	tlsFiles := rpc.TLSFiles{Cert: cfg.RPCTLSCertFile, Key: cfg.RPCTLSKeyFile, CA: cfg.RPCTLSCAFile}
	if cfg.Role != "api" {
		// A process that is both API and conductor opens no JSON-RPC port unless asked to:
		// its API calls its own conductor directly.
		rpcURL := ""
		if cfg.RPCListen != "" {
			if s.rpcLn, err = listenRPC(cfg.RPCListen, tlsFiles); err != nil {
				return nil, err
			}
			rpcURL = cfg.RPCURL
			if rpcURL == "" {
				scheme := "http://"
				if tlsFiles.Cert != "" {
					scheme = "https://"
				}
				rpcURL = scheme + s.rpcLn.Addr().String()
			}
		}
		registry := conductor.Registry{}
		s.ipmiSessions = ipmi.NewSessions()
		// A session the power sync used stays open until the next pass (the client's keepalive
		// holds it at the BMC meanwhile): a pass then costs one request per IPMI node, not a
		// new RMCP+ session's five round trips (docs/scale.md).
		s.ipmiSessions.MaxIdle = max(s.ipmiSessions.MaxIdle, cfg.PowerSyncInterval.Duration+30*time.Second)
		if s.boot, err = registerBoot(ctx, cfg, store, registry, s.metrics, log); err != nil {
			return nil, err
		}
		registerDrivers(cfg, registry, s.ipmiSessions, s.boot.localImages(), log)
		if err = checkCatalogue(registry); err != nil {
			return nil, err
		}
		ccfg := conductor.Defaults()
		ccfg.Hostname, ccfg.Group = cfg.Hostname, cfg.ConductorGroup
		ccfg.HeartbeatInterval, ccfg.HeartbeatTimeout = cfg.HeartbeatInterval.Duration, cfg.HeartbeatTimeout.Duration
		ccfg.SyncLocalStateInterval = cfg.SyncLocalStateInterval.Duration
		ccfg.PowerSyncInterval, ccfg.CallbackTimeout = cfg.PowerSyncInterval.Duration, cfg.CallbackTimeout.Duration
		ccfg.TimeoutCheckInterval, ccfg.RescueCallbackTimeout = cfg.TimeoutCheckInterval.Duration, cfg.RescueCallbackTimeout.Duration
		ccfg.BootRetryTimeout = cfg.BootRetryTimeout.Duration
		ccfg.BMCPollInterval = cfg.BMCPollInterval.Duration
		ccfg.Inspection = cfg.conductorInspection()
		ccfg.Inspection.Rules = s.rules
		ccfg.Console.Address, ccfg.Console.LogDir = cfg.ConsoleAddress, cfg.ConsoleLogDir
		if cfg.ConsolePortRange != "" {
			ccfg.Console.Ports, _ = console.ParsePortRange(cfg.ConsolePortRange) // checked by Validate
		}
		if cfg.ConsoleLogDir != "" {
			if err := os.MkdirAll(cfg.ConsoleLogDir, 0o700); err != nil {
				return nil, fmt.Errorf("create the console log directory: %w", err)
			}
		}
		ccfg.RequireAgentTLS = cfg.AgentRequireTLS
		ccfg.SendSensorData, ccfg.SensorDataInterval = cfg.SendSensorData, cfg.SendSensorDataInterval.Duration
		ccfg.Metrics = s.metrics
		if cfg.AutomatedClean != nil {
			ccfg.AutomatedClean = *cfg.AutomatedClean
		}
		if cfg.Workers > 0 {
			ccfg.Workers = cfg.Workers
		}
		if cfg.PowerSyncWorkers > 0 {
			ccfg.PowerSyncWorkers = cfg.PowerSyncWorkers
		}
		ccfg.FastTrack, ccfg.FastTrackTimeout = cfg.FastTrack, cfg.FastTrackTimeout.Duration
		if err = store.RegisterConductor(ctx, &ironwork.Conductor{Hostname: cfg.Hostname, ConductorGroup: cfg.ConductorGroup,
			Drivers: drivers.EnabledHardwareTypes, RPCURL: rpcURL}); err != nil {
			return nil, err
		}
		s.cond = conductor.New(ccfg, store, drivers, registry, log)
		if err = s.cond.Start(ctx); err != nil {
			return nil, fmt.Errorf("start conductor: %w", err)
		}
		if s.rpcLn != nil {
			s.https = append(s.https, newHTTPServer(sealer.Handler(rpc.Handler(s.cond, log), log), log))
		}
	}
	var auth httpapi.Authenticator
	switch cfg.AuthStrategy {
	case "http_basic":
		if auth, err = httpapi.LoadBasicAuth(cfg.HTTPBasicAuthFile); err != nil {
			return nil, err
		}
	case "keystone":
		k := cfg.Keystone
		if auth, err = httpapi.NewKeystone(httpapi.KeystoneConfig{AuthURL: k.AuthURL, Username: k.Username,
			Password: k.Password, UserDomainName: k.UserDomainName, ProjectName: k.ProjectName,
			ProjectDomainName: k.ProjectDomainName, CacheTime: k.TokenCacheTime.Duration}, nil, log); err != nil {
			return nil, err
		}
	}
	enforcer := policy.New(cfg.RBACServiceProjectName)
	if cfg.PolicyFile != "" {
		if enforcer, err = policy.Load(cfg.PolicyFile, cfg.RBACServiceProjectName); err != nil {
			return nil, err
		}
	}
	if err = s.serveMetrics(auth); err != nil {
		return nil, err
	}
	if cfg.Role != "conductor" {
		opts := httpapi.Options{Store: store, Drivers: drivers, Logger: log, PublicURL: cfg.PublicURL,
			ConductorTimeout: cfg.HeartbeatTimeout.Duration, Auth: auth, Policy: enforcer, Metrics: s.metrics,
			NodeCacheBytes: int64(cfg.NodeCacheMiB) << 20, MaxConcurrent: cfg.APIMaxConcurrency}
		if cfg.MetricsListen == "" {
			opts.MetricsHandler = s.metrics.Handler(log)
		}
		if s.cond != nil {
			s.router = rpc.NewRouter(s.cond, store, s.cond.Ring(), cfg.Hostname, log)
		} else {
			s.router = rpc.NewRouter(nil, store, conductor.NewRing(), cfg.Hostname, log)
			if err = s.router.Refresh(ctx, cfg.HeartbeatTimeout.Duration); err != nil {
				return nil, err
			}
		}
		clientTLS, err := tlsFiles.ClientConfig()
		if err != nil {
			return nil, err
		}
		s.router.Secure(sealer, clientTLS)
		opts.Ring, opts.Conductor = s.router.Ring(), s.router
		hub := events.NewHub(log)
		s.hub = hub
		store.ObserveNodes(hub.Observe)
		s.watcher = events.NewWatcher(hub, store, events.WatchConfig{Interval: cfg.EventsPollInterval.Duration})
		opts.Events = hub
		api := httpapi.New(opts)
		s.metrics.WatchAPI(api)
		ui, err := webui.New(webui.Options{API: api, Auth: opts.Auth, Logger: log, EventsPath: httpapi.EventsPath})
		if err != nil {
			return nil, err
		}
		s.https = append([]*http.Server{newHTTPServer(withConsole(api, ui), log)}, s.https...)
		if err = s.listenForAgents(ctx, api.AgentEndpoints()); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// rpcSealer returns what seals the conductors' JSON-RPC: the secret of rpc_secret_file, or
// the one every process of the deployment finds in the shared database.
func rpcSealer(ctx context.Context, cfg Config, store *sqlstore.Store) (*rpc.Sealer, error) {
	var secret []byte
	var err error
	if cfg.RPCSecretFile != "" {
		secret, err = rpc.LoadSecretFile(cfg.RPCSecretFile)
	} else {
		secret, err = store.SharedSecret(ctx, "json-rpc")
	}
	if err != nil {
		return nil, err
	}
	return rpc.NewSealer(secret)
}

// listenRPC opens the conductor's JSON-RPC listener, with TLS when a certificate is set.
func listenRPC(addr string, files rpc.TLSFiles) (net.Listener, error) {
	tlsCfg, err := files.ServerConfig()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for JSON-RPC on %s: %w", addr, err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	return ln, nil
}

// RPCAddr is the address the conductor's JSON-RPC listens on ("" when it opened none).
func (s *Server) RPCAddr() string {
	if s.rpcLn == nil {
		return ""
	}
	return s.rpcLn.Addr().String()
}

// Addr is the address the API listens on ("" for a conductor-only process).
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// URL is the API's base URL.
func (s *Server) URL() string {
	if s.cfg.TLSCertFile != "" {
		return "https://" + s.Addr()
	}
	return "http://" + s.Addr()
}

// apiTLSConfig loads the API's certificate and key (PEM) for HTTPS, TLS 1.2 or newer.
func apiTLSConfig(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load API certificate %s: %w", certFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// Store is the server's store, for tests.
func (s *Server) Store() *sqlstore.Store { return s.store }

// Conductor is the server's conductor (nil for role api), for tests.
func (s *Server) Conductor() *conductor.Conductor { return s.cond }

// Serve answers requests until ctx ends, then shuts down gracefully: the API stops taking
// requests, the conductor finishes or abandons its work, and it marks itself offline.
func (s *Server) Serve(ctx context.Context) error {
	s.log.Info("ironwork serving", "role", s.cfg.Role, "api", s.Addr(), "database", s.store.Dialect(),
		"auth", s.cfg.AuthStrategy, "conductor", s.cfg.Hostname)
	errc := make(chan error, len(s.https)+2) // and the agent and metrics servers
	for _, h := range s.https {
		ln := s.rpcLn
		if s.ln != nil && h == s.https[0] {
			ln = s.ln
		}
		go func() { errc <- h.Serve(ln) }()
	}
	bootDone := make(chan error, 1)
	bootCtx, stopBoot := context.WithCancel(ctx)
	defer stopBoot()
	if s.boot != nil {
		go func() { bootDone <- s.boot.serve(bootCtx) }()
	} else {
		bootDone <- nil
	}
	if s.cond == nil {
		// An API-only server keeps its view of the ring fresh.
		go func() {
			tick := time.NewTicker(s.cfg.HeartbeatInterval.Duration)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					if err := s.router.Refresh(ctx, s.cfg.HeartbeatTimeout.Duration); err != nil && ctx.Err() == nil {
						s.log.Warn("refresh conductor ring", "error", err)
					}
				}
			}
		}()
	}
	if s.agentSrv != nil {
		go func() { errc <- s.agentSrv.Serve(s.agentLn) }()
	}
	if s.metricsSrv != nil {
		go func() { errc <- s.metricsSrv.Serve(s.metricsLn) }()
	}
	watchDone := make(chan struct{})
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if s.watcher != nil {
		go func() { defer close(watchDone); s.watcher.Run(watchCtx) }()
	} else {
		close(watchDone)
	}
	var serveErr error
	select {
	case err := <-errc:
		serveErr = fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	stopBoot()
	stopWatch()
	<-watchDone
	if err := <-bootDone; err != nil {
		serveErr = errors.Join(serveErr, fmt.Errorf("boot services: %w", err))
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, h := range []*http.Server{s.agentSrv, s.metricsSrv} {
		if h == nil {
			continue
		}
		if err := h.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	if s.hub != nil {
		s.hub.Close() // event streams end, or Shutdown would wait for their readers
	}
	for _, h := range s.https {
		if err := h.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	if s.cond != nil {
		s.cond.Stop()
		s.ipmiSessions.Close()
		if err := s.store.UnregisterConductor(sctx, s.cfg.Hostname); err != nil {
			s.log.Warn("unregister conductor", "error", err)
		}
	}
	return errors.Join(append(errs, serveErr)...)
}

// Close releases the listeners and the database.
func (s *Server) Close() error {
	if s.rules != nil {
		s.rules.Wait()
	}
	if s.boot != nil {
		s.boot.close()
	}
	if s.ln != nil {
		s.ln.Close()
	}
	if s.agentLn != nil {
		s.agentLn.Close()
	}
	if s.metricsLn != nil {
		s.metricsLn.Close()
	}
	if s.rpcLn != nil {
		s.rpcLn.Close()
	}
	return s.store.Close()
}

// serveMetrics registers the fleet collector and, with metrics_listen, opens the metrics'
// own listener (served with auth, as the API is). The collector reads the store at scrape.
func (s *Server) serveMetrics(auth httpapi.Authenticator) error {
	fo := metrics.FleetOptions{Store: s.store, HeartbeatTimeout: s.cfg.HeartbeatTimeout.Duration,
		CountInterval: s.cfg.MetricsCountInterval.Duration}
	if s.cond != nil {
		fo.Conductor, fo.Group, fo.Ring = s.cond, s.cfg.ConductorGroup, s.cond.Ring()
	}
	s.metrics.WatchFleet(fo)
	if s.cfg.MetricsListen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.MetricsListen)
	if err != nil {
		return fmt.Errorf("listen for metrics on %s: %w", s.cfg.MetricsListen, err)
	}
	s.metricsLn = ln
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", httpapi.RequireAuth(auth, s.metrics.Handler(s.log)))
	s.metricsSrv = newHTTPServer(mux, s.log)
	return nil
}

// MetricsAddr is the address of metrics_listen ("" when the metrics are on the API's).
func (s *Server) MetricsAddr() string {
	if s.metricsLn == nil {
		return ""
	}
	return s.metricsLn.Addr().String()
}

// withConsole serves the web console under /ui/ and the API everywhere else.
func withConsole(api, ui http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, webui.Prefix):
			ui.ServeHTTP(w, r)
		case r.URL.Path == "/ui" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			http.Redirect(w, r, webui.Prefix, http.StatusMovedPermanently)
		default:
			api.ServeHTTP(w, r)
		}
	})
}
