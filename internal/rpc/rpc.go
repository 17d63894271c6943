// Package rpc carries conductor calls between Ironwork processes: an API-only server routes
// each node's work to the conductor the hash ring names, over JSON-RPC 2.0 on HTTP, and a
// process that is both API and conductor calls its own conductor directly. It owns the wire
// format and the routing; what the calls do belongs to the conductor.
package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

type request struct {
	JSONRPC string          `json:"jsonrpc"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
	ID      int64           `json:"id"`
	// Requester is the API request that caused the call (its id and user), an Ironwork
	// extension of the envelope: the remote conductor's logs and history name it too.
	Requester *conductor.Requester `json:"requester,omitempty"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    struct {
		Kind ironwork.Code `json:"kind"`
	} `json:"data"`
}

type response struct {
	JSONRPC string          `json:"jsonrpc"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
	ID      int64           `json:"id"`
}

// Handler serves the conductor's operations (conductor.Operations) at POST /rpc.
func Handler(c *conductor.Conductor, log *slog.Logger) http.Handler {
	ops := map[string]conductor.Operation{}
	for _, op := range conductor.Operations() {
		ops[op.Method()] = op
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /rpc", func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := json.NewDecoder(io.LimitReader(r.Body, 4<<20)).Decode(&req); err != nil {
			writeResponse(w, http.StatusOK, response{Error: &rpcError{Code: -32700, Message: "parse error: " + err.Error()}})
			return
		}
		resp := response{ID: req.ID}
		ctx := r.Context()
		if req.Requester != nil {
			ctx = conductor.WithRequester(ctx, *req.Requester)
		}
		result, key, err := invoke(ctx, c, ops, req)
		if err != nil {
			e := &rpcError{Code: -32000, Message: ironwork.ErrorMessage(err)}
			e.Data.Kind = ironwork.ErrorCode(err)
			if e.Data.Kind == ironwork.EINTERNAL {
				log.Error("rpc call failed", "method", req.Method, "node", key, "request_id", conductor.RequesterOf(ctx).RequestID, "error", err)
			}
			resp.Error = e
		} else {
			resp.Result, _ = json.Marshal(result)
		}
		writeResponse(w, http.StatusOK, resp)
	})
	return mux
}

// writeResponse answers a JSON-RPC response with an HTTP status.
func writeResponse(w http.ResponseWriter, status int, resp response) {
	resp.JSONRPC = "2.0"
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(resp)
}

// invoke decodes a request's params into its operation's request type and runs it.
func invoke(ctx context.Context, c *conductor.Conductor, ops map[string]conductor.Operation, req request) (any, string, error) {
	op, ok := ops[req.Method]
	if !ok {
		return nil, "", ironwork.Errorf(ironwork.EINVALID, "unknown method %q", req.Method)
	}
	return op.Invoke(ctx, c, func(v any) error {
		if len(req.Params) == 0 {
			return errors.New("no params")
		}
		return json.Unmarshal(req.Params, v)
	})
}

// Router sends each node's calls to the conductor the hash ring names: the local one directly,
// others over JSON-RPC. It is the conductor.Caller of the API: conductor.Call(ctx, router, op, req).
type Router struct {
	local *conductor.Conductor // nil on an API-only server
	store *sqlstore.Store
	ring  *conductor.Ring
	self  string
	http  *http.Client
	log   *slog.Logger

	mu   sync.RWMutex
	urls map[string]string
	seq  atomic.Int64
}

// NewRouter returns a router. local may be nil; ring is the local conductor's ring, or a ring
// the caller keeps fresh with Refresh.
func NewRouter(local *conductor.Conductor, store *sqlstore.Store, ring *conductor.Ring, self string, log *slog.Logger) *Router {
	return &Router{local: local, store: store, ring: ring, self: self, log: log, urls: map[string]string{},
		http: &http.Client{Timeout: 60 * time.Second}}
}

// Refresh rebuilds the ring and the conductors' addresses from the database.
func (r *Router) Refresh(ctx context.Context, timeout time.Duration) error {
	urls, err := conductor.RefreshRing(ctx, r.store, r.ring, timeout, "")
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.urls = urls
	r.mu.Unlock()
	return nil
}

// Route implements conductor.Caller: the local conductor, or the remote owner of the node
// named by key; an empty key (work that belongs to no node yet) goes to any conductor.
func (r *Router) Route(ctx context.Context, key string) (*conductor.Conductor, conductor.Remote, error) {
	if key == "" {
		return r.anyConductor(ctx)
	}
	n, err := r.store.GetNode(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	owner := r.ring.ConductorFor(n)
	if owner == "" {
		return nil, nil, ironwork.Errorf(ironwork.EUNAVAILABLE, "No conductor is alive for conductor group \"%s\" of node %s.", n.ConductorGroup, n.UUID)
	}
	if r.local != nil && owner == r.self {
		return r.local, nil, nil
	}
	url := r.lookup(ctx, func(urls map[string]string) string { return urls[owner] })
	if url == "" {
		if r.local != nil {
			return r.local, nil, nil // the owner takes no calls: do the work here, under the node lock
		}
		return nil, nil, ironwork.Errorf(ironwork.EUNAVAILABLE, "Conductor %s has no RPC address.", owner)
	}
	return nil, r.remote(url), nil
}

// anyConductor returns the local conductor, or some live remote one.
func (r *Router) anyConductor(ctx context.Context) (*conductor.Conductor, conductor.Remote, error) {
	if r.local != nil {
		return r.local, nil, nil
	}
	url := r.lookup(ctx, func(urls map[string]string) string {
		for _, u := range urls {
			if u != "" {
				return u
			}
		}
		return ""
	})
	if url == "" {
		return nil, nil, ironwork.Errorf(ironwork.EUNAVAILABLE, "No conductor is alive to process the allocation.")
	}
	return nil, r.remote(url), nil
}

// lookup picks an address from the known ones, refreshing them once when it finds none.
func (r *Router) lookup(ctx context.Context, pick func(urls map[string]string) string) string {
	r.mu.RLock()
	url := pick(r.urls)
	r.mu.RUnlock()
	if url == "" {
		if err := r.Refresh(ctx, 0); err == nil {
			r.mu.RLock()
			url = pick(r.urls)
			r.mu.RUnlock()
		}
	}
	return url
}

// remote is a conductor reached over JSON-RPC at url.
type remote struct {
	r   *Router
	url string
}

func (r *Router) remote(url string) remote { return remote{r: r, url: url} }

// Call implements conductor.Remote: it posts the request and decodes the result into resp.
// Error kinds (ironwork.Code) cross the trip.
func (rc remote) Call(ctx context.Context, method string, params, resp any) error {
	p, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("encode %s params: %w", method, err)
	}
	env := request{JSONRPC: "2.0", Method: method, Params: p, ID: rc.r.seq.Add(1)}
	if who := conductor.RequesterOf(ctx); who != (conductor.Requester{}) {
		env.Requester = &who
	}
	body, _ := json.Marshal(env)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rc.url+"/rpc", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build %s call: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	hr, err := rc.r.http.Do(req)
	if err != nil {
		return ironwork.Errorf(ironwork.EUNAVAILABLE, "Conductor at %s did not answer: %v", rc.url, err)
	}
	defer hr.Body.Close()
	var rr response
	if err := json.NewDecoder(io.LimitReader(hr.Body, 64<<20)).Decode(&rr); err != nil {
		return fmt.Errorf("decode rpc answer from %s: %w", rc.url, err)
	}
	if rr.Error != nil {
		kind := rr.Error.Data.Kind
		if kind == "" {
			kind = ironwork.EINTERNAL
		}
		return &ironwork.Error{Code: kind, Message: rr.Error.Message}
	}
	if resp != nil && len(rr.Result) > 0 {
		return json.Unmarshal(rr.Result, resp)
	}
	return nil
}

var _ conductor.Caller = (*Router)(nil)

// Ring is the ring the router routes by.
func (r *Router) Ring() *conductor.Ring { return r.ring }
