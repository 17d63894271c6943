package httpapi

import (
	"bytes"
	"net/http"
	"sort"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// Vendor passthru: a node's vendor interface methods (GET .../vendor_passthru/methods, and
// any HTTP method on .../vendor_passthru?method=NAME), and the driver-level equivalents.

func (s *Server) passthruRoutes() {
	s.handle("GET /v1/nodes/{ident}/vendor_passthru/methods", s.nodePassthruMethods)
	s.handle("GET /v1/drivers/{name}/vendor_passthru/methods", s.driverPassthruMethods)
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		s.handle(m+" /v1/nodes/{ident}/vendor_passthru", s.nodePassthru)
		s.handle(m+" /v1/drivers/{name}/vendor_passthru", s.driverPassthru)
		// The method in the path, as python-ironicclient sends it (Ironic takes both).
		s.handle(m+" /v1/nodes/{ident}/vendor_passthru/{method}", s.nodePassthru)
		s.handle(m+" /v1/drivers/{name}/vendor_passthru/{method}", s.driverPassthru)
	}
}

func renderPassthruMethods(methods map[string]conductor.PassthruMethod) object {
	names := make([]string, 0, len(methods))
	for n := range methods {
		names = append(names, n)
	}
	sort.Strings(names)
	out := object{}
	for _, n := range names {
		m := methods[n]
		hm := m.HTTPMethods
		if hm == nil {
			hm = []string{}
		}
		out = append(out, kv{n, object{{"http_methods", hm}, {"async", m.Async}, {"description", m.Description},
			{"attach", m.Attach}, {"require_exclusive_lock", m.RequireExclusiveLock}}})
	}
	return out
}

func (s *Server) nodePassthruMethods(w http.ResponseWriter, r *http.Request) error {
	methods, err := callNode(s, r, conductor.OpVendorPassthruMethods)
	if err != nil {
		return err
	}
	return s.writeJSON(w, http.StatusOK, renderPassthruMethods(methods))
}

// passthruArgs is a vendor passthru call's method (from the query, or the path) and arguments
// (the JSON object of the body, which may be empty whatever the HTTP method).
func passthruArgs(r *http.Request) (string, map[string]any, error) {
	method := r.URL.Query().Get("method")
	if method == "" {
		method = r.PathValue("method")
	}
	if method == "" {
		return "", nil, invalid("Method not specified")
	}
	raw, err := readBody(r)
	if err != nil {
		return "", nil, err
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return method, map[string]any{}, nil
	}
	v, err := decodeChecked(raw)
	if err != nil {
		return "", nil, err
	}
	switch body := v.(type) {
	case map[string]any:
		return method, body, nil
	case nil:
		return method, map[string]any{}, nil
	}
	return "", nil, invalid("Invalid vendor passthru arguments: %s is not of type 'object'", pyRepr(v))
}

func (s *Server) nodePassthru(w http.ResponseWriter, r *http.Request) error {
	method, args, err := passthruArgs(r)
	if err != nil {
		return err
	}
	c, uuid, err := s.condNode(r)
	if err != nil {
		return err
	}
	res, err := conductor.Call(r.Context(), c, conductor.OpVendorPassthru, conductor.VendorPassthruRequest{
		NodeRef: conductor.NodeRef{Node: uuid}, Method: method, HTTPMethod: r.Method, Args: args})
	if err != nil {
		return err
	}
	return s.writePassthru(w, res)
}

// writePassthru answers as Ironic: 202 for an async method, 200 with the result otherwise; an
// "attach" result that is a string is the raw body.
func (s *Server) writePassthru(w http.ResponseWriter, res conductor.VendorPassthruResult) error {
	status := http.StatusOK
	if res.Async {
		status = http.StatusAccepted
	}
	if str, ok := res.Return.(string); ok && res.Attach {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(status)
		_, err := w.Write([]byte(str))
		return err
	}
	return s.writeJSON(w, status, res.Return)
}

// driverPassthruMethods lists the driver-level vendor methods of a hardware type's default
// vendor interface: none of this build's vendor interfaces has any (as Ironic's redfish,
// ipmitool and fake ones).
func (s *Server) driverPassthruMethods(w http.ResponseWriter, r *http.Request) error {
	if _, _, err := s.lookupDriver(r); err != nil {
		return err
	}
	return s.writeJSON(w, http.StatusOK, object{})
}

func (s *Server) driverPassthru(w http.ResponseWriter, r *http.Request) error {
	method, _, err := passthruArgs(r)
	if err != nil {
		return err
	}
	if _, _, err := s.lookupDriver(r); err != nil {
		return err
	}
	return ironwork.Errorf(ironwork.EINVALID, "No handler for method %s", method)
}
