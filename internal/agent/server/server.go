// Package server is ironwork-agent's command API: the HTTP interface of ironic-python-agent
// (IPA) that the conductor calls on the agent's callback URL. It serves GET /v1/status,
// POST /v1/commands/?wait=BOOL&agent_token=TOKEN, GET /v1/commands/ and
// GET /v1/commands/{id}, runs one command at a time (a second one gets 409, as IPA's
// AgentIsBusy) and keeps their results for the conductor to poll. The commands themselves
// (standby.prepare_image, clean.execute_clean_step, ...) are in commands.go and steps.go and
// use internal/agent for the disk work.
//
// The package serves the agent's side only: it never calls the Ironic API (lookup and
// heartbeats are cmd/ironwork-agent's) and never decides provision states.
package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ironwork/ironwork/api"
)

// Log attribute keys.
const (
	logKeyCommand = "command"
	logKeyID      = "id"
	logKeyStatus  = "status"
	logKeyError   = "error"
	logKeyElapsed = "elapsed"
	logKeyDevice  = "device"
	logKeyURL     = "url"
	logKeyStep    = "step"
)

// DefaultMaxBody bounds a command request: a config drive can be ~64 MiB as base64.
const DefaultMaxBody = 100 << 20

// maxResults is how many finished command results are kept for GET /v1/commands.
const maxResults = 100

// ProgressFunc receives a running command's progress; the server hands the latest to
// heartbeats through Status.
type ProgressFunc func(api.Progress)

// Command is one agent command.
type Command struct {
	// Run does the work. A string result becomes {"result": "<name>: <string>"}, as IPA
	// reports; anything else is marshalled as it is. An *Error keeps its type and code.
	Run func(ctx context.Context, params map[string]any, progress ProgressFunc) (any, error)
	// Validate, if set, checks params before the command starts; an error is a 400.
	Validate func(params map[string]any) error
	// Sync commands answer POST with their final result whatever ?wait says (IPA's
	// sync_command); they still take the one-command-at-a-time slot.
	Sync bool
}

// Error is an IPA-style error: the JSON body of a refused request and a failed command's
// command_error. Commands may return one to choose the type a conductor branches on (e.g.
// "VersionMismatch").
type Error struct {
	Type    string
	Code    int
	Message string
	Details string
}

func (e *Error) Error() string {
	if e.Details == "" {
		return e.Message
	}
	return e.Message + ": " + e.Details
}

func (e *Error) wire() *api.CommandError {
	return &api.CommandError{Type: e.Type, Code: e.Code, Message: e.Message, Details: e.Details}
}

// Config configures a Server.
type Config struct {
	Token    string             // the agent token from lookup; every POST must carry it
	Version  string             // reported by GET /v1/status
	Commands map[string]Command // by full name, "standby.prepare_image"
	Logger   *slog.Logger       // nil discards
	// OnDone is called (from the command's goroutine) after a command finished, so that the
	// agent can heartbeat at once instead of a period later. Optional.
	OnDone  func(api.CommandResult)
	MaxBody int64 // request body limit; 0 means DefaultMaxBody
}

// Status is what a heartbeat reports about the command in flight.
type Status struct {
	Busy     bool
	Command  string        // short name of the running or last command
	Progress *api.Progress // of the running command, nil when none reported
	Failed   bool          // the last finished command failed
}

type record struct {
	res  api.CommandResult
	done chan struct{}
}

// Server is the command API. It is an http.Handler; Serve runs it on a listener.
type Server struct {
	cfg       Config
	log       *slog.Logger
	started   time.Time
	closing   chan struct{} // closed by Close: running commands are cancelled
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu       sync.Mutex
	results  []*record
	running  *record
	progress *api.Progress
}

// New returns a server for cfg. Close it (or let Serve return) to cancel running commands.
func New(cfg Config) *Server {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: log, started: time.Now(), closing: make(chan struct{})}
}

// Close cancels running commands and waits for them to end.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	s.wg.Wait()
}

// Serve answers requests on ln until ctx is cancelled, then shuts the HTTP server down,
// cancels running commands and returns.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = hs.Shutdown(sctx)
		cancel()
		<-errc
		s.Close()
		return nil
	case err := <-errc:
		s.Close()
		return fmt.Errorf("serve command API: %w", err)
	}
}

// Status reports the running (or last) command for heartbeats.
func (s *Server) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st Status
	if s.running != nil {
		st.Busy = true
		st.Command = s.running.res.CommandName
		if s.progress != nil {
			p := *s.progress
			st.Progress = &p
		}
		return st
	}
	if n := len(s.results); n > 0 {
		last := s.results[n-1].res
		st.Command = last.CommandName
		st.Failed = last.CommandStatus == api.CommandFailed
	}
	return st
}

// ServeHTTP routes the IPA command API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case p == "" || p == "/v1":
		if r.Method != http.MethodGet {
			methodNotAllowed(w, "GET")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"name": "ironwork-agent", "version": s.cfg.Version})
	case p == "/v1/status":
		if r.Method != http.MethodGet {
			methodNotAllowed(w, "GET")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"started_at": float64(s.started.UnixNano()) / 1e9,
			"version":    s.cfg.Version,
		})
	case p == "/v1/commands":
		switch r.Method {
		case http.MethodGet:
			s.list(w)
		case http.MethodPost:
			s.post(w, r)
		default:
			methodNotAllowed(w, "GET, POST")
		}
	case strings.HasPrefix(p, "/v1/commands/"):
		if r.Method != http.MethodGet {
			methodNotAllowed(w, "GET")
			return
		}
		s.get(w, r, strings.TrimPrefix(p, "/v1/commands/"))
	default:
		writeError(w, &Error{Type: "NotFound", Code: http.StatusNotFound, Message: "Not found", Details: "no such path " + r.URL.Path})
	}
}

func (s *Server) list(w http.ResponseWriter) {
	s.mu.Lock()
	out := api.CommandList{Commands: make([]api.CommandResult, 0, len(s.results))}
	for _, rec := range s.results {
		out.Commands = append(out.Commands, rec.res)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	var rec *record
	for _, x := range s.results {
		if x.res.ID == id {
			rec = x
		}
	}
	s.mu.Unlock()
	if rec == nil {
		writeError(w, &Error{Type: "RequestedObjectNotFoundError", Code: http.StatusNotFound,
			Message: "Requested object not found", Details: fmt.Sprintf("Command Result with id %s not found.", id)})
		return
	}
	if wait, _ := strconv.ParseBool(r.URL.Query().Get("wait")); wait {
		select {
		case <-rec.done:
		case <-r.Context().Done():
			return
		}
	}
	writeJSON(w, http.StatusOK, s.snapshot(rec))
}

func (s *Server) snapshot(rec *record) api.CommandResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	return rec.res
}

// checkToken compares the request's agent_token with ours in constant time.
func (s *Server) checkToken(r *http.Request) *Error {
	got := r.URL.Query().Get("agent_token")
	if got == "" {
		got = r.Header.Get("X-Agent-Token")
	}
	if got == "" {
		return &Error{Type: "Unauthorized", Code: http.StatusUnauthorized, Message: "Agent token is required",
			Details: "pass the agent token from lookup as ?agent_token="}
	}
	if s.cfg.Token == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) != 1 {
		return &Error{Type: "Unauthorized", Code: http.StatusUnauthorized, Message: "Token invalid.",
			Details: "the agent token does not match the one this agent got at lookup"}
	}
	return nil
}

func (s *Server) post(w http.ResponseWriter, r *http.Request) {
	if e := s.checkToken(r); e != nil {
		writeError(w, e)
		return
	}
	wait := false
	if v := r.URL.Query().Get("wait"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, invalidContent(fmt.Sprintf("wait must be true or false, not %q", v)))
			return
		}
		wait = b
	}
	var req api.AgentCommand
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, &Error{Type: "InvalidContentError", Code: http.StatusRequestEntityTooLarge,
				Message: "Invalid request body", Details: fmt.Sprintf("body larger than %d bytes", s.cfg.MaxBody)})
			return
		}
		writeError(w, invalidContent("decode command: "+err.Error()))
		return
	}
	cmd, ok := s.cfg.Commands[req.Name]
	if !ok {
		writeError(w, &Error{Type: "InvalidCommandError", Code: http.StatusBadRequest, Message: "Invalid command",
			Details: fmt.Sprintf("unknown command %q", req.Name)})
		return
	}
	if req.Params == nil {
		req.Params = map[string]any{}
	}
	if cmd.Validate != nil {
		if err := cmd.Validate(req.Params); err != nil {
			writeError(w, &Error{Type: "InvalidCommandParamsError", Code: http.StatusBadRequest,
				Message: "Invalid command parameters", Details: err.Error()})
			return
		}
	}
	rec, busy := s.start(req, cmd)
	if busy != "" {
		writeError(w, &Error{Type: "AgentIsBusy", Code: http.StatusConflict, Message: "Agent is busy",
			Details: "executing command " + busy})
		return
	}
	if wait || cmd.Sync {
		select {
		case <-rec.done:
		case <-r.Context().Done():
			return
		}
	}
	writeJSON(w, http.StatusOK, s.snapshot(rec))
}

// start records and launches a command, or returns the name of the one already running.
func (s *Server) start(req api.AgentCommand, cmd Command) (*record, string) {
	_, short, _ := strings.Cut(req.Name, ".")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running != nil {
		return nil, s.running.res.CommandName
	}
	rec := &record{
		res: api.CommandResult{
			ID:            uuid.NewString(),
			CommandName:   short,
			CommandParams: redact(req.Params),
			CommandStatus: api.CommandRunning,
		},
		done: make(chan struct{}),
	}
	s.running, s.progress = rec, nil
	s.results = append(s.results, rec)
	if len(s.results) > maxResults {
		s.results = append([]*record(nil), s.results[len(s.results)-maxResults:]...)
	}
	s.wg.Add(1)
	go s.run(rec, req, cmd)
	return rec, ""
}

func (s *Server) run(rec *record, req api.AgentCommand, cmd Command) {
	defer s.wg.Done()
	start := time.Now()
	log := s.log.With(logKeyCommand, req.Name, logKeyID, rec.res.ID)
	log.Info("command started")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The command outlives the request that started it and ends when the server closes.
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	result, err := s.call(ctx, cmd, req.Params, rec.res.CommandName)
	var raw json.RawMessage
	if err == nil {
		if str, ok := result.(string); ok {
			result = map[string]string{"result": rec.res.CommandName + ": " + str}
		}
		if raw, err = json.Marshal(result); err != nil {
			err = fmt.Errorf("encode result: %w", err)
		}
	}
	s.mu.Lock()
	if err != nil {
		rec.res.CommandStatus = api.CommandFailed
		rec.res.CommandError = commandError(err)
	} else {
		rec.res.CommandStatus = api.CommandSucceeded
		rec.res.CommandResult = raw
	}
	s.running, s.progress = nil, nil
	final := rec.res
	s.mu.Unlock()
	close(rec.done)
	if err != nil {
		log.Warn("command failed", logKeyElapsed, time.Since(start), logKeyError, err)
	} else {
		log.Info("command succeeded", logKeyElapsed, time.Since(start))
	}
	if s.cfg.OnDone != nil {
		s.cfg.OnDone(final)
	}
}

// call runs a command, turning a panic into an error: a bug in one command must not take
// the agent (PID 1) down.
func (s *Server) call(ctx context.Context, cmd Command, params map[string]any, name string) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: internal error: %v", name, p)
		}
	}()
	return cmd.Run(ctx, params, func(p api.Progress) {
		if p.Command == "" {
			p.Command = name
		}
		s.mu.Lock()
		s.progress = &p
		s.mu.Unlock()
	})
}

func commandError(err error) *api.CommandError {
	var e *Error
	if errors.As(err, &e) {
		return e.wire()
	}
	return &api.CommandError{Type: "CommandExecutionError", Code: http.StatusInternalServerError,
		Message: "Command execution failed", Details: err.Error()}
}

// redact replaces long string parameters (config drives, logs) so that command listings stay
// small, as IPA's remove_large_keys does.
func redact(params map[string]any) map[string]any {
	out := make(map[string]any, len(params))
	for k, v := range params {
		if k == "rescue_password" || k == "image_request_authorization" {
			out[k] = "******" // a hash, and with hashed false the password itself
			continue
		}
		switch x := v.(type) {
		case string:
			if len(x) > 1024 {
				v = fmt.Sprintf("<%d bytes omitted>", len(x))
			}
		case map[string]any:
			v = redact(x)
		}
		out[k] = v
	}
	return out
}

func invalidContent(details string) *Error {
	return &Error{Type: "InvalidContentError", Code: http.StatusBadRequest, Message: "Invalid request body", Details: details}
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, &Error{Type: "MethodNotAllowed", Code: http.StatusMethodNotAllowed, Message: "Method not allowed", Details: "allowed: " + allow})
}

func writeError(w http.ResponseWriter, e *Error) { writeJSON(w, e.Code, e.wire()) }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
