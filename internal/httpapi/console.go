package httpapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// consoleRoutes registers the serial console's routes: Ironic's enable/disable and connection
// information, and our websocket form of the same byte stream.
func (s *Server) consoleRoutes() {
	s.handle("GET /v1/nodes/{ident}/states/console", s.getConsole)
	s.handle("PUT /v1/nodes/{ident}/states/console", s.setConsole)
	s.handle("GET /v1/nodes/{ident}/console/ws", s.consoleWebsocket)
}

// getConsole answers {"console_enabled": ..., "console_info": {"type": "socat", "url":
// "tcp://HOST:PORT"}} (console_info null while disabled), or 400 when the node's driver has
// no console.
func (s *Server) getConsole(w http.ResponseWriter, r *http.Request) error {
	info, err := callNode(s, r, conductor.OpConsoleInfo)
	if err != nil {
		return err
	}
	var ci any
	if info.Enabled && info.URL != "" {
		ci = object{{"type", info.Type}, {"url", info.URL}}
	}
	return s.writeJSON(w, http.StatusOK, object{{"console_enabled", info.Enabled}, {"console_info", ci}})
}

// setConsole serves PUT {"enabled": true|false}: 202 with the console's URL as Location, the
// work done by the node's conductor.
func (s *Server) setConsole(w http.ResponseWriter, r *http.Request) error {
	c, body, err := s.condBody(r, "body")
	if err != nil {
		return err
	}
	v, ok := body["enabled"]
	for k := range body {
		if k != "enabled" {
			return schemaError("body", "Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	if !ok || v == nil {
		return invalid("Missing mandatory parameter: enabled")
	}
	enabled, err := asBool("enabled", v)
	if err != nil {
		return invalid("Invalid enabled: %s is not a boolean.", pyRepr(v))
	}
	uuid, err := s.nodeIdent(r)
	if err != nil {
		return err
	}
	req := conductor.SetConsoleRequest{NodeRef: conductor.NodeRef{Node: uuid}, Enabled: enabled}
	if err := conductor.Do(r.Context(), c, conductor.OpSetConsoleMode, req); err != nil {
		return err
	}
	w.Header().Set("Location", s.baseURL(r)+"/v1/nodes/"+r.PathValue("ident")+"/states/console")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// consoleWebsocket streams a node's console over a websocket on the API's port, for browsers:
// it connects to the console's TCP URL as its one client, sends what the node prints as binary
// messages and writes every message it receives (text or binary) to the node. The console must
// be enabled; the API's authentication applies.
func (s *Server) consoleWebsocket(w http.ResponseWriter, r *http.Request) error {
	// Browsers cannot send the microversion header with a websocket: without one, the node may
	// be named as at the newest version (by name as well as UUID).
	if r.Header.Get("X-OpenStack-Ironic-API-Version") == "" && r.Header.Get("OpenStack-API-Version") == "" {
		r = r.WithContext(context.WithValue(r.Context(), versionKey{}, MaxMinor))
	}
	info, err := callNode(s, r, conductor.OpConsoleInfo)
	if err != nil {
		return err
	}
	ident := r.PathValue("ident")
	if !info.Enabled {
		return invalid("Console access is not enabled on node %s", ident)
	}
	addr, ok := strings.CutPrefix(info.URL, "tcp://")
	if !ok {
		return ironwork.Errorf(ironwork.ECONFLICT, "The console of node %s is enabled but not served now: it is hidden between an undeploy and the next deploy.", ident)
	}
	var d net.Dialer
	dctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	conn, err := d.DialContext(dctx, "tcp", addr)
	cancel()
	if err != nil {
		s.log.Warn("connect to the console", "node", ident, "url", info.URL, "error", err)
		return ironwork.Errorf(ironwork.EUNAVAILABLE, "The console of node %s at %s does not answer.", ident, info.URL)
	}
	defer conn.Close()
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return nil // Accept has answered the request
	}
	defer ws.CloseNow()
	ctx, stop := context.WithCancel(r.Context())
	defer stop()
	go func() { // browser -> node
		defer stop()
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			if _, err := conn.Write(b); err != nil {
				return
			}
		}
	}()
	context.AfterFunc(ctx, func() { conn.Close() })
	buf := make([]byte, 4096)
	for { // node -> browser
		n, err := conn.Read(buf)
		if n > 0 {
			if werr := ws.Write(ctx, websocket.MessageBinary, buf[:n]); werr != nil {
				return nil
			}
		}
		if err != nil {
			reason := "console closed"
			if ctx.Err() != nil && !errors.Is(err, net.ErrClosed) {
				reason = "client left"
			}
			ws.Close(websocket.StatusNormalClosure, reason)
			return nil
		}
	}
}
