package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/driver/fake"
	"github.com/ironwork/ironwork/internal/httpapi"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// Server is a running Ironwork server.
type Server struct {
	cfg   Config
	log   *slog.Logger
	store *sqlstore.Store
	api   *httpapi.Server
	cond  *conductor.Conductor
	ln    net.Listener
	http  *http.Server
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

// Start validates cfg, opens the database, registers this conductor and starts listening. The
// caller runs Serve and finally Close.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*Server, error) {
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
	registry := conductor.Registry{}
	fake.Register(registry)
	ccfg := conductor.Defaults()
	ccfg.Hostname, ccfg.Group = cfg.Hostname, cfg.ConductorGroup
	ccfg.HeartbeatInterval, ccfg.HeartbeatTimeout = cfg.HeartbeatInterval.Duration, cfg.HeartbeatTimeout.Duration
	ccfg.PowerSyncInterval, ccfg.CallbackTimeout = cfg.PowerSyncInterval.Duration, cfg.CallbackTimeout.Duration
	ccfg.TimeoutCheckInterval = cfg.TimeoutCheckInterval.Duration
	if cfg.AutomatedClean != nil {
		ccfg.AutomatedClean = *cfg.AutomatedClean
	}
	if cfg.Workers > 0 {
		ccfg.Workers = cfg.Workers
	}
	cond := conductor.New(ccfg, store, drivers, registry, log)
	opts := httpapi.Options{
		Store: store, Drivers: drivers, Logger: log, PublicURL: cfg.PublicURL,
		ConductorTimeout: cfg.HeartbeatTimeout.Duration,
		Ring:             cond.Ring(), Conductor: cond,
	}
	if cfg.AuthStrategy == "http_basic" {
		auth, err := httpapi.LoadBasicAuth(cfg.HTTPBasicAuthFile)
		if err != nil {
			store.Close()
			return nil, err
		}
		opts.Auth = auth
	}
	if err := store.RegisterConductor(ctx, &ironwork.Conductor{Hostname: cfg.Hostname, ConductorGroup: cfg.ConductorGroup,
		Drivers: drivers.EnabledHardwareTypes}); err != nil {
		store.Close()
		return nil, err
	}
	if err := cond.Start(ctx); err != nil {
		store.Close()
		return nil, fmt.Errorf("start conductor: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		cond.Stop()
		store.Close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	s := &Server{cfg: cfg, log: log, store: store, api: httpapi.New(opts), ln: ln, cond: cond}
	s.http = &http.Server{
		Handler:           s.api,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Addr is the address the API listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the API's base URL.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Store is the server's store, for tests.
func (s *Server) Store() *sqlstore.Store { return s.store }

// Serve answers API requests and keeps the conductor's heartbeat until ctx ends, then shuts
// down gracefully.
func (s *Server) Serve(ctx context.Context) error {
	s.log.Info("ironwork serving", "listen", s.Addr(), "database", s.store.Dialect(), "auth", s.cfg.AuthStrategy,
		"conductor", s.cfg.Hostname)
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(s.ln) }()
	select {
	case err := <-errc:
		s.cond.Stop()
		return fmt.Errorf("serve API: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.http.Shutdown(sctx)
	s.cond.Stop()
	if uerr := s.store.UnregisterConductor(sctx, s.cfg.Hostname); uerr != nil {
		s.log.Warn("unregister conductor", "error", uerr)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shut down API: %w", err)
	}
	return nil
}

// Conductor is the server's conductor, for tests.
func (s *Server) Conductor() *conductor.Conductor { return s.cond }

// Close releases the database.
func (s *Server) Close() error { return s.store.Close() }
