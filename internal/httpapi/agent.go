package httpapi

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path"
	"strings"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/conductor"
)

// The deploy agent's endpoints: lookup (1.22) and heartbeat (1.22; agent_version 1.36,
// agent_token 1.62). Both are public, as in Ironic: the agent proves itself with the token
// that lookup handed out, which every heartbeat and command carries.

// agentHeartbeatTimeout is what lookup tells agents (seconds), as Ironic's
// [api]ramdisk_heartbeat_timeout.
const agentHeartbeatTimeout = 300

func (s *Server) agentRoutes() {
	s.handle("GET /v1/lookup", s.lookup)
	s.handle("POST /v1/heartbeat/{ident}", s.heartbeat)
}

func (s *Server) lookup(w http.ResponseWriter, r *http.Request) error {
	if versionOf(r.Context()) < 22 {
		return tooNew(22)
	}
	q := r.URL.Query()
	var macs []string
	for _, a := range strings.Split(q.Get("addresses"), ",") {
		if a = strings.ToLower(strings.TrimSpace(a)); a != "" {
			hw, err := net.ParseMAC(a)
			if err != nil || len(hw) != 6 {
				return invalid("%q is not a valid MAC address.", a)
			}
			macs = append(macs, hw.String())
		}
	}
	uuid := q.Get("node_uuid")
	if len(macs) == 0 && uuid == "" {
		return invalid("One of addresses or node_uuid must be provided.")
	}
	c, err := s.cond()
	if err != nil {
		return err
	}
	var n *ironwork.Node
	if uuid != "" {
		n, err = s.store.GetNode(r.Context(), uuid)
	} else {
		n, err = s.store.NodeByPortAddress(r.Context(), macs)
	}
	if err != nil || !conductor.AgentMayLookUp(n.ProvisionState) && !conductor.FastTrackState(n.ProvisionState) {
		// As Ironic: a node that exists but may not be looked up now is not found either. A
		// stable state is for the conductor to decide (fast track on or off).
		return ironwork.Errorf(ironwork.ENOTFOUND, "Node could not be found.")
	}
	// The node's conductor decides and records the token, in the same transaction as its
	// check of the node's state.
	l, err := conductor.Call(r.Context(), c, conductor.OpLookupAgent, conductor.NodeRef{Node: n.UUID})
	if err != nil {
		return err
	}
	s.logFor(r).Info("agent looked up", "node", l.UUID, "addresses", strings.Join(macs, ","), "state", l.ProvisionState)
	return s.writeJSON(w, http.StatusOK, api.LookupResponse{
		Node: map[string]any{"uuid": l.UUID, "name": optStr(l.Name), "properties": maskSecrets(obj(l.Properties)),
			"instance_info": maskSecrets(obj(l.InstanceInfo)), "driver_internal_info": maskSecrets(obj(l.DriverInternalInfo))},
		Config: api.LookupConfig{HeartbeatTimeout: agentHeartbeatTimeout, AgentToken: l.Token, AgentTokenRequired: true},
	})
}

func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request) error {
	ver := versionOf(r.Context())
	if ver < 22 {
		return tooNew(22)
	}
	c, err := s.cond()
	if err != nil {
		return err
	}
	n, err := s.loadNode(r.Context(), r.PathValue("ident"))
	if err != nil {
		return err
	}
	body, err := decodeBody(r, "heartbeat")
	if err != nil {
		return err
	}
	for k := range body {
		switch k {
		case "callback_url", "agent_token", "agent_version", "agent_status", "agent_status_message",
			"agent_verify_ca", "ironwork_progress":
		default:
			return invalid("Unknown argument: %q", k)
		}
	}
	var hb api.HeartbeatRequest
	if err := remarshal(body, &hb); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return invalid("Invalid value for %s: %s", te.Field, te.Value)
		}
		return invalid("Invalid heartbeat: %s", err)
	}
	if !strings.HasPrefix(hb.CallbackURL, "http://") && !strings.HasPrefix(hb.CallbackURL, "https://") {
		return invalid("callback_url must be an http or https URL, not %q", hb.CallbackURL)
	}
	if _, ok := body["agent_verify_ca"]; ok && ver < 68 {
		return invalid("Field \"agent_verify_ca\" not recognised in this version")
	}
	if hb.AgentVerifyCA != "" {
		if _, err := conductor.ParseAgentCertificate(hb.AgentVerifyCA); err != nil {
			return invalid("Invalid agent_verify_ca: %s", err)
		}
	}
	if err := conductor.Do(r.Context(), c, conductor.OpAgentHeartbeat, conductor.HeartbeatRequest{NodeRef: conductor.NodeRef{Node: n.UUID}, Heartbeat: hb}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// remarshal decodes body, already checked for unknown keys, into the wire type v.
func remarshal(body map[string]any, v any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// AgentEndpoints serves only what a deploy agent calls (version discovery, lookup,
// heartbeat, continue_inspection), for a listener on the provisioning network; everything else is refused in
// Ironic's error format.
func (s *Server) AgentEndpoints() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := path.Clean("/" + r.URL.Path)
		if p == "/" || p == "/v1" || p == "/v1/lookup" || p == "/v1/continue_inspection" || strings.HasPrefix(p, "/v1/heartbeat/") {
			s.ServeHTTP(w, r)
			return
		}
		s.writeError(w, r, ironwork.Errorf(ironwork.EFORBIDDEN, "Only the deploy agent's endpoints are served on the provisioning network."))
	})
}
