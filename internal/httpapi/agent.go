package httpapi

import (
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
	var n *ironwork.Node
	var err error
	if uuid != "" {
		n, err = s.store.GetNode(r.Context(), uuid)
	} else {
		n, err = s.store.NodeByPortAddress(r.Context(), macs)
	}
	if err != nil || !conductor.AgentMayLookUp(n.ProvisionState) {
		// As Ironic: a node that exists but may not be looked up now is not found either.
		return ironwork.Errorf(ironwork.ENOTFOUND, "Node could not be found.")
	}
	token, n, err := conductor.IssueAgentToken(r.Context(), s.store, n.UUID)
	if err != nil {
		return err
	}
	s.log.Info("agent looked up", "node", n.UUID, "addresses", strings.Join(macs, ","), "state", n.ProvisionState)
	return s.writeJSON(w, http.StatusOK, api.LookupResponse{
		Node: map[string]any{"uuid": n.UUID, "name": optStr(n.Name), "properties": maskSecrets(obj(n.Properties)),
			"instance_info": maskSecrets(obj(n.InstanceInfo)), "driver_internal_info": maskSecrets(obj(n.DriverInternalInfo))},
		Config: api.LookupConfig{HeartbeatTimeout: agentHeartbeatTimeout, AgentToken: token, AgentTokenRequired: true},
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
	var hb conductor.Heartbeat
	for k, v := range body {
		str, isStr := v.(string)
		switch k {
		case "callback_url":
			hb.CallbackURL = str
		case "agent_token":
			hb.AgentToken = str
		case "agent_version":
			hb.AgentVersion = str
		case "agent_status":
			hb.AgentStatus = str
		case "agent_verify_ca", "agent_status_message":
			isStr = true
		case "ironwork_progress":
			hb.Progress, isStr = v.(map[string]any)
		default:
			return invalid("Unknown argument: %q", k)
		}
		if !isStr && v != nil {
			return invalid("Invalid value for %s: %v", k, v)
		}
	}
	if !strings.HasPrefix(hb.CallbackURL, "http://") && !strings.HasPrefix(hb.CallbackURL, "https://") {
		return invalid("callback_url must be an http or https URL, not %q", hb.CallbackURL)
	}
	if err := conductor.Do(r.Context(), c, conductor.OpAgentHeartbeat, conductor.HeartbeatRequest{NodeRef: conductor.NodeRef{Node: n.UUID}, Heartbeat: hb}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// AgentEndpoints serves only what a deploy agent calls (version discovery, lookup,
// heartbeat), for a listener on the provisioning network; everything else is refused in
// Ironic's error format.
func (s *Server) AgentEndpoints() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := path.Clean("/" + r.URL.Path)
		if p == "/" || p == "/v1" || p == "/v1/lookup" || strings.HasPrefix(p, "/v1/heartbeat/") {
			s.ServeHTTP(w, r)
			return
		}
		s.writeError(w, r, ironwork.Errorf(ironwork.EFORBIDDEN, "Only the deploy agent's endpoints are served on the provisioning network."))
	})
}
