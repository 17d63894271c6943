package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/policy"
)

// principalKey carries the request's policy.Principal in its context.
type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p policy.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalOf is the caller of the request ctx belongs to. Without one (no authentication
// configured, or a public route) it is an unrestricted system administrator, as noauth is.
func PrincipalOf(ctx context.Context) policy.Principal {
	if p, ok := ctx.Value(principalKey{}).(policy.Principal); ok {
		return p
	}
	return NoauthPrincipal
}

// NoauthPrincipal is the caller under auth_strategy noauth: a system administrator that every
// rule lets through (Ironic does not enforce policy without Keystone).
var NoauthPrincipal = policy.Principal{UserName: "noauth", Roles: []string{"admin", "manager", "member", "reader"},
	System: true, Unrestricted: true}

// object is what a route's rule is checked against.
type objKind int

const (
	objNone            objKind = iota // a rule on the whole deployment (system-scoped in Ironic's defaults)
	objNode                           // {ident} is a node: hidden (404) from projects that may not see it
	objPort                           // {ident} is a port, checked through its node
	objPortgroup                      // {ident} is a portgroup, checked through its node
	objAllocation                     // {ident} is an allocation, checked through its owner
	objList                           // a list filtered to the caller's project when it may not list all
	objPublic                         // no check (the agent's routes, the API's root)
	objNodeCreate                     // node creation: also allowed to project admins for their own nodes
	objNodeAllocation                 // {ident} is a node, the rule is checked against its allocation's owner
	objPortCreate                     // a port or portgroup creation, checked against the node of its body
	objProvision                      // a node's provision state: also the step rules when the body names steps
	objVolumeConnector                // {ident} is a volume connector, checked through its node
	objVolumeTarget                   // {ident} is a volume target, checked through its node
	objRunbook                        // {ident} is a runbook, checked against its owner (public ones readable)
)

// guard is the authorization of one route: the Ironic rule and what it applies to. For
// objList, rule is the list's prefix ("baremetal:node"): Ironic checks prefix:list_all, then
// prefix:list with the caller's project as the filter.
type guard struct {
	rule string
	obj  objKind
}

// routeGuards maps every route pattern to its Ironic rule. A route missing here is served
// only to system administrators (role admin, system scope), so that a new route is closed until
// its rule is named.
var routeGuards = map[string]guard{
	"GET /{$}": {obj: objPublic}, "GET /v1": {obj: objPublic}, "GET /v1/{$}": {obj: objPublic},
	"GET /v1/lookup": {obj: objPublic}, "POST /v1/heartbeat/{ident}": {obj: objPublic},
	"POST /v1/continue_inspection": {obj: objPublic}, "/": {obj: objPublic},

	"GET /v1/nodes":                                          {"baremetal:node", objList},
	"GET /v1/nodes/detail":                                   {"baremetal:node", objList},
	"POST /v1/nodes":                                         {"baremetal:node:create", objNodeCreate},
	"GET /v1/nodes/{ident}":                                  {"baremetal:node:get", objNode},
	"PATCH /v1/nodes/{ident}":                                {"baremetal:node:get", objNode}, // field rules in patchNode
	"DELETE /v1/nodes/{ident}":                               {"baremetal:node:delete", objNode},
	"GET /v1/nodes/{ident}/states":                           {"baremetal:node:get_states", objNode},
	"GET /v1/nodes/{ident}/traits":                           {"baremetal:node:traits:list", objNode},
	"PUT /v1/nodes/{ident}/traits":                           {"baremetal:node:traits:set", objNode},
	"PUT /v1/nodes/{ident}/traits/{trait}":                   {"baremetal:node:traits:set", objNode},
	"DELETE /v1/nodes/{ident}/traits":                        {"baremetal:node:traits:delete", objNode},
	"DELETE /v1/nodes/{ident}/traits/{trait}":                {"baremetal:node:traits:delete", objNode},
	"PUT /v1/nodes/{ident}/states/provision":                 {"baremetal:node:set_provision_state", objProvision},
	"PUT /v1/nodes/{ident}/states/power":                     {"baremetal:node:set_power_state", objNode},
	"PUT /v1/nodes/{ident}/states/raid":                      {"baremetal:node:set_raid_state", objNode},
	"PUT /v1/nodes/{ident}/states/boot_mode":                 {"baremetal:node:set_boot_mode", objNode},
	"PUT /v1/nodes/{ident}/states/secure_boot":               {"baremetal:node:set_secure_boot", objNode},
	"GET /v1/nodes/{ident}/states/console":                   {"baremetal:node:get_console", objNode},
	"PUT /v1/nodes/{ident}/states/console":                   {"baremetal:node:set_console_state", objNode},
	"GET /v1/nodes/{ident}/console/ws":                       {"baremetal:node:get_console", objNode},
	"GET /v1/nodes/{ident}/validate":                         {"baremetal:node:validate", objNode},
	"GET /v1/nodes/{ident}/management/boot_device":           {"baremetal:node:get_boot_device", objNode},
	"PUT /v1/nodes/{ident}/management/boot_device":           {"baremetal:node:set_boot_device", objNode},
	"GET /v1/nodes/{ident}/management/boot_device/supported": {"baremetal:node:get_boot_device", objNode},
	"PUT /v1/nodes/{ident}/management/inject_nmi":            {"baremetal:node:inject_nmi", objNode},
	"GET /v1/nodes/{ident}/history":                          {"baremetal:node:history:get", objNode},
	"GET /v1/nodes/{ident}/history/{event}":                  {"baremetal:node:history:get", objNode},
	"GET /v1/nodes/{ident}/inventory":                        {"baremetal:node:inventory:get", objNode},
	"GET /v1/nodes/{ident}/ports":                            {"baremetal:port:get", objNode},
	"GET /v1/nodes/{ident}/ports/detail":                     {"baremetal:port:get", objNode},
	"GET /v1/nodes/{ident}/portgroups":                       {"baremetal:portgroup:get", objNode},
	"GET /v1/nodes/{ident}/portgroups/detail":                {"baremetal:portgroup:get", objNode},
	"PUT /v1/nodes/{ident}/maintenance":                      {"baremetal:node:set_maintenance", objNode},
	"DELETE /v1/nodes/{ident}/maintenance":                   {"baremetal:node:clear_maintenance", objNode},
	"GET /v1/nodes/{ident}/vifs":                             {"baremetal:node:vif:list", objNode},
	"POST /v1/nodes/{ident}/vifs":                            {"baremetal:node:vif:attach", objNode},
	"DELETE /v1/nodes/{ident}/vifs/{vif}":                    {"baremetal:node:vif:detach", objNode},
	"GET /v1/nodes/{ident}/vmedia":                           {"baremetal:node:vmedia:get", objNode},
	"POST /v1/nodes/{ident}/vmedia":                          {"baremetal:node:vmedia:attach", objNode},
	"DELETE /v1/nodes/{ident}/vmedia":                        {"baremetal:node:vmedia:detach", objNode},
	"GET /v1/nodes/{ident}/allocation":                       {"baremetal:allocation:get", objNodeAllocation},
	"DELETE /v1/nodes/{ident}/allocation":                    {"baremetal:allocation:delete", objNodeAllocation},

	"GET /v1/ports":                           {"baremetal:port", objList},
	"GET /v1/ports/detail":                    {"baremetal:port", objList},
	"POST /v1/ports":                          {"baremetal:port:create", objPortCreate},
	"GET /v1/ports/{ident}":                   {"baremetal:port:get", objPort},
	"PATCH /v1/ports/{ident}":                 {"baremetal:port:update", objPort},
	"DELETE /v1/ports/{ident}":                {"baremetal:port:delete", objPort},
	"GET /v1/portgroups":                      {"baremetal:portgroup", objList},
	"GET /v1/portgroups/detail":               {"baremetal:portgroup", objList},
	"POST /v1/portgroups":                     {"baremetal:portgroup:create", objPortCreate},
	"GET /v1/portgroups/{ident}":              {"baremetal:portgroup:get", objPortgroup},
	"PATCH /v1/portgroups/{ident}":            {"baremetal:portgroup:update", objPortgroup},
	"DELETE /v1/portgroups/{ident}":           {"baremetal:portgroup:delete", objPortgroup},
	"GET /v1/portgroups/{ident}/ports":        {"baremetal:port:get", objPortgroup},
	"GET /v1/portgroups/{ident}/ports/detail": {"baremetal:port:get", objPortgroup},

	"GET /v1/allocations":            {"baremetal:allocation", objList},
	"POST /v1/allocations":           {"baremetal:allocation:create", objNone},
	"GET /v1/allocations/{ident}":    {"baremetal:allocation:get", objAllocation},
	"PATCH /v1/allocations/{ident}":  {"baremetal:allocation:update", objAllocation},
	"DELETE /v1/allocations/{ident}": {"baremetal:allocation:delete", objAllocation},

	"GET /v1/chassis":                      {"baremetal:chassis:get", objNone},
	"GET /v1/chassis/detail":               {"baremetal:chassis:get", objNone},
	"POST /v1/chassis":                     {"baremetal:chassis:create", objNone},
	"GET /v1/chassis/{ident}":              {"baremetal:chassis:get", objNone},
	"PATCH /v1/chassis/{ident}":            {"baremetal:chassis:update", objNone},
	"DELETE /v1/chassis/{ident}":           {"baremetal:chassis:delete", objNone},
	"GET /v1/chassis/{ident}/nodes":        {"baremetal:chassis:get", objNone},
	"GET /v1/chassis/{ident}/nodes/detail": {"baremetal:chassis:get", objNone},

	"GET /v1/drivers":                   {"baremetal:driver:get", objNone},
	"GET /v1/drivers/{name}":            {"baremetal:driver:get", objNone},
	"GET /v1/drivers/{name}/properties": {"baremetal:driver:get_properties", objNone},
	"GET /v1/conductors":                {"baremetal:conductor:get", objNone},
	"GET /v1/conductors/{hostname}":     {"baremetal:conductor:get", objNone},
	"GET /v1/shards":                    {"baremetal:shards:get", objNone},

	"GET /v1/deploy_templates":            {"baremetal:deploy_template:get", objNone},
	"POST /v1/deploy_templates":           {"baremetal:deploy_template:create", objNone},
	"GET /v1/deploy_templates/{ident}":    {"baremetal:deploy_template:get", objNone},
	"PATCH /v1/deploy_templates/{ident}":  {"baremetal:deploy_template:update", objNone},
	"DELETE /v1/deploy_templates/{ident}": {"baremetal:deploy_template:delete", objNone},
	"GET /v1/inspection_rules":            {"baremetal:inspection_rule:get", objNone},
	"POST /v1/inspection_rules":           {"baremetal:inspection_rule:create", objNone},
	"GET /v1/inspection_rules/{ident}":    {"baremetal:inspection_rule:get", objNone},
	"PATCH /v1/inspection_rules/{ident}":  {"baremetal:inspection_rule:update", objNone},
	"DELETE /v1/inspection_rules/{ident}": {"baremetal:inspection_rule:delete", objNone},
	"GET " + EventsPath:                   {"baremetal:node:list_all", objNone},
	"GET /metrics":                        {"baremetal:node:list_all", objNone},

	// The routes of BIOS (1.40), firmware (1.86), indicators (1.63), children (1.83),
	// vendor passthru, RAID (1.12), external events (1.54), volumes (1.32) and runbooks (1.92).
	"GET /v1/nodes/{ident}/bios":                              {"baremetal:node:bios:get", objNode},
	"GET /v1/nodes/{ident}/bios/{name}":                       {"baremetal:node:bios:get", objNode},
	"GET /v1/nodes/{ident}/firmware":                          {"baremetal:node:firmware:get", objNode},
	"GET /v1/nodes/{ident}/management/indicators":             {"baremetal:node:get_indicator_state", objNode},
	"GET /v1/nodes/{ident}/management/indicators/{indicator}": {"baremetal:node:get_indicator_state", objNode},
	"PUT /v1/nodes/{ident}/management/indicators/{indicator}": {"baremetal:node:set_indicator_state", objNode},
	"GET /v1/nodes/{ident}/children":                          {"baremetal:node:get", objNode},
	"GET /v1/nodes/{ident}/vendor_passthru/methods":           {"baremetal:node:vendor_passthru", objNode},
	"GET /v1/drivers/{name}/vendor_passthru/methods":          {"baremetal:driver:vendor_passthru", objNone},
	"GET /v1/drivers/{name}/raid/logical_disk_properties":     {"baremetal:driver:get_raid_logical_disk_properties", objNone},
	"POST /v1/events":                                         {"baremetal:events:post", objNone},
	"GET /v1/nodes/{ident}/vendor_passthru":                   {"baremetal:node:vendor_passthru", objNode},
	"GET /v1/drivers/{name}/vendor_passthru":                  {"baremetal:driver:vendor_passthru", objNone},
	"GET /v1/nodes/{ident}/vendor_passthru/{method}":          {"baremetal:node:vendor_passthru", objNode},
	"GET /v1/drivers/{name}/vendor_passthru/{method}":         {"baremetal:driver:vendor_passthru", objNone},
	"POST /v1/nodes/{ident}/vendor_passthru":                  {"baremetal:node:vendor_passthru", objNode},
	"POST /v1/drivers/{name}/vendor_passthru":                 {"baremetal:driver:vendor_passthru", objNone},
	"POST /v1/nodes/{ident}/vendor_passthru/{method}":         {"baremetal:node:vendor_passthru", objNode},
	"POST /v1/drivers/{name}/vendor_passthru/{method}":        {"baremetal:driver:vendor_passthru", objNone},
	"PUT /v1/nodes/{ident}/vendor_passthru":                   {"baremetal:node:vendor_passthru", objNode},
	"PUT /v1/drivers/{name}/vendor_passthru":                  {"baremetal:driver:vendor_passthru", objNone},
	"PUT /v1/nodes/{ident}/vendor_passthru/{method}":          {"baremetal:node:vendor_passthru", objNode},
	"PUT /v1/drivers/{name}/vendor_passthru/{method}":         {"baremetal:driver:vendor_passthru", objNone},
	"PATCH /v1/nodes/{ident}/vendor_passthru":                 {"baremetal:node:vendor_passthru", objNode},
	"PATCH /v1/drivers/{name}/vendor_passthru":                {"baremetal:driver:vendor_passthru", objNone},
	"PATCH /v1/nodes/{ident}/vendor_passthru/{method}":        {"baremetal:node:vendor_passthru", objNode},
	"PATCH /v1/drivers/{name}/vendor_passthru/{method}":       {"baremetal:driver:vendor_passthru", objNone},
	"DELETE /v1/nodes/{ident}/vendor_passthru":                {"baremetal:node:vendor_passthru", objNode},
	"DELETE /v1/drivers/{name}/vendor_passthru":               {"baremetal:driver:vendor_passthru", objNone},
	"DELETE /v1/nodes/{ident}/vendor_passthru/{method}":       {"baremetal:node:vendor_passthru", objNode},
	"DELETE /v1/drivers/{name}/vendor_passthru/{method}":      {"baremetal:driver:vendor_passthru", objNone},

	"GET /v1/volume":                                {"baremetal:volume:get", objNone},
	"GET /v1/volume/{$}":                            {"baremetal:volume:get", objNone},
	"GET /v1/volume/connectors":                     {"baremetal:volume", objList},
	"GET /v1/volume/connectors/detail":              {"baremetal:volume", objList},
	"POST /v1/volume/connectors":                    {"baremetal:volume:create", objPortCreate},
	"GET /v1/volume/connectors/{ident}":             {"baremetal:volume:get", objVolumeConnector},
	"PATCH /v1/volume/connectors/{ident}":           {"baremetal:volume:update", objVolumeConnector},
	"DELETE /v1/volume/connectors/{ident}":          {"baremetal:volume:delete", objVolumeConnector},
	"GET /v1/volume/targets":                        {"baremetal:volume", objList},
	"GET /v1/volume/targets/detail":                 {"baremetal:volume", objList},
	"POST /v1/volume/targets":                       {"baremetal:volume:create", objPortCreate},
	"GET /v1/volume/targets/{ident}":                {"baremetal:volume:get", objVolumeTarget},
	"PATCH /v1/volume/targets/{ident}":              {"baremetal:volume:update", objVolumeTarget},
	"DELETE /v1/volume/targets/{ident}":             {"baremetal:volume:delete", objVolumeTarget},
	"GET /v1/nodes/{node}/volume":                   {"baremetal:volume:get", objNode},
	"GET /v1/nodes/{node}/volume/{$}":               {"baremetal:volume:get", objNode},
	"GET /v1/nodes/{node}/volume/connectors":        {"baremetal:volume:get", objNode},
	"GET /v1/nodes/{node}/volume/connectors/detail": {"baremetal:volume:get", objNode},
	"GET /v1/nodes/{node}/volume/targets":           {"baremetal:volume:get", objNode},
	"GET /v1/nodes/{node}/volume/targets/detail":    {"baremetal:volume:get", objNode},

	"GET /v1/runbooks":                           {"baremetal:runbook", objList},
	"POST /v1/runbooks":                          {"baremetal:runbook:create", objNone},
	"GET /v1/runbooks/{ident}":                   {"baremetal:runbook:get", objRunbook},
	"PATCH /v1/runbooks/{ident}":                 {"baremetal:runbook:update", objRunbook},
	"DELETE /v1/runbooks/{ident}":                {"baremetal:runbook:delete", objRunbook},
	"GET /v1/runbooks/{ident}/traits":            {"baremetal:runbook:get", objRunbook},
	"PUT /v1/runbooks/{ident}/traits":            {"baremetal:runbook:update", objRunbook},
	"PUT /v1/runbooks/{ident}/traits/{trait}":    {"baremetal:runbook:update", objRunbook},
	"DELETE /v1/runbooks/{ident}/traits/{trait}": {"baremetal:runbook:update", objRunbook},
}

// unguardedRule is the rule of a route routeGuards does not name: system administrators only,
// unless a policy file says otherwise.
const unguardedRule = policy.UnlistedRoute

// ownProjectKey carries the project a project administrator creates a node for.
type ownProjectKey struct{}

// listProjectKey carries the project a list is restricted to (the caller's, when it may not
// list every project's objects).
type listProjectKey struct{}

// listProject is the project a list must be restricted to, "" for none.
func listProject(ctx context.Context) string {
	p, _ := ctx.Value(listProjectKey{}).(string)
	return p
}

// forbidden is Ironic's 403 for a rule the caller does not pass.
func forbidden(rule string) error {
	return ironwork.Errorf(ironwork.EFORBIDDEN, "Access was denied to the following resource: %s", rule)
}

func nodeTarget(n *ironwork.Node) policy.Target {
	return policy.Target{Node: true, NodeOwner: n.Owner, NodeLessee: n.Lessee}
}

// authorize wraps the handler of pattern with its rule.
func (s *Server) authorize(pattern string, h handlerFunc) handlerFunc {
	g, ok := routeGuards[pattern]
	if !ok {
		g = guard{rule: unguardedRule, obj: objNone}
	}
	if g.obj == objPublic {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		p := PrincipalOf(r.Context())
		if p.Unrestricted {
			return h(w, r)
		}
		ctx := r.Context()
		switch g.obj {
		case objNone:
			if !s.policy.Authorize(g.rule, p, policy.Target{}) {
				return forbidden(g.rule)
			}
		case objNodeCreate:
			// Ironic's project_admin_can_manage_own_nodes: a project administrator may
			// create nodes, owned by its project.
			own := !s.opts.ProjectAdminsCannotManageOwnNodes &&
				s.policy.Authorize("baremetal:node:create:self_owned_node", p, policy.Target{})
			if !own && !s.policy.Authorize(g.rule, p, policy.Target{}) {
				return forbidden(g.rule)
			}
			if own && !p.System {
				r = r.WithContext(context.WithValue(ctx, ownProjectKey{}, p.ProjectID))
			}
		case objNode, objProvision:
			ident := cmp.Or(r.PathValue("ident"), r.PathValue("node"))
			n, err := s.loadNode(ctx, ident)
			if err != nil {
				return err
			}
			err = s.authorizeNode(p, n, ident, g.rule)
			if g.rule == "baremetal:node:delete" && ironwork.ErrorCode(err) == ironwork.EFORBIDDEN &&
				!s.opts.ProjectAdminsCannotManageOwnNodes {
				err = s.authorizeNode(p, n, ident, "baremetal:node:delete:self_owned_node")
			}
			if err != nil {
				return err
			}
			if g.obj == objProvision {
				if err := s.authorizeSteps(r, p, n); err != nil {
					return err
				}
			}
		case objPort, objPortgroup, objVolumeConnector, objVolumeTarget:
			if err := s.authorizePort(r, p, g); err != nil {
				return err
			}
		case objNodeAllocation:
			ident := r.PathValue("ident")
			n, err := s.loadNode(ctx, ident)
			if err != nil {
				return err
			}
			if err := s.authorizeNode(p, n, ident, ""); err != nil {
				return err
			}
			if n.AllocationUUID != "" {
				if a, err := s.store.GetAllocation(ctx, n.AllocationUUID); err == nil &&
					!s.policy.Authorize(g.rule, p, policy.Target{Allocation: true, AllocationOwner: a.Owner}) {
					return forbidden(g.rule)
				}
			}
		case objPortCreate:
			if err := s.authorizePortCreate(r, p, g.rule); err != nil {
				return err
			}
		case objAllocation:
			ident := r.PathValue("ident")
			a, err := s.store.GetAllocation(ctx, ident)
			if err != nil {
				return err
			}
			t := policy.Target{Allocation: true, AllocationOwner: a.Owner}
			if !s.policy.Authorize("baremetal:allocation:get", p, t) {
				return ironwork.Errorf(ironwork.ENOTFOUND, "Allocation %s could not be found.", ident)
			}
			if !s.policy.Authorize(g.rule, p, t) {
				return forbidden(g.rule)
			}
		case objRunbook:
			if err := s.authorizeRunbook(r, p, g.rule); err != nil {
				return err
			}
		case objList:
			if s.policy.Authorize(g.rule+":list_all", p, policy.Target{}) {
				break
			}
			// The filter Ironic's check_list_policy checks: a node list's and a runbook list's
			// `project` (a node list's `owner` and `lessee` only narrow the caller's own view,
			// as in Ironic), an allocation list's `owner`.
			owner := r.URL.Query().Get("owner")
			if g.rule == "baremetal:runbook" || g.rule == "baremetal:node" {
				owner = r.URL.Query().Get("project")
			}
			if p.ProjectID == "" || (owner != "" && owner != p.ProjectID) {
				return forbidden(g.rule + ":list_all")
			}
			if !s.policy.Authorize(g.rule+":list", p, policy.Target{}) {
				return forbidden(g.rule + ":list")
			}
			r = r.WithContext(context.WithValue(ctx, listProjectKey{}, p.ProjectID))
		}
		return h(w, r)
	}
}

// visibleNode loads a node named in a list's filter: for a list restricted to a project, a
// node of another project is "not found", so that a filter does not reveal that it exists.
func (s *Server) visibleNode(ctx context.Context, ident string) (*ironwork.Node, error) {
	n, err := s.loadNode(ctx, ident)
	if err != nil {
		return nil, err
	}
	if lp := listProject(ctx); lp != "" && n.Owner != lp && n.Lessee != lp {
		return nil, ironwork.Errorf(ironwork.ENOTFOUND, "Node %s could not be found.", ident)
	}
	return n, nil
}

// authorizeNode applies Ironic's check_node_policy_and_retrieve: a caller that may not see the
// node gets 404 when it acts in a project (the node's existence is not revealed) and 403 when
// system-scoped; one that may see it but not do rule gets 403.
func (s *Server) authorizeNode(p policy.Principal, n *ironwork.Node, ident, rule string) error {
	t := nodeTarget(n)
	if !s.policy.Authorize("baremetal:node:get", p, t) {
		if p.ProjectID != "" {
			return ironwork.Errorf(ironwork.ENOTFOUND, "Node %s could not be found.", ident)
		}
		return forbidden("baremetal:node:get")
	}
	if rule != "" && !s.policy.Authorize(rule, p, t) {
		return forbidden(rule)
	}
	return nil
}

// authorizePort checks the rule of a port, portgroup, volume connector or volume target
// against its node, hiding it (404) from a
// caller that may not see the node.
func (s *Server) authorizePort(r *http.Request, p policy.Principal, g guard) error {
	ctx := r.Context()
	ident := r.PathValue("ident")
	var nodeUUID string
	notFound := func() error { return ironwork.Errorf(ironwork.ENOTFOUND, "Port %s could not be found.", ident) }
	switch g.obj {
	case objPort:
		port, err := s.store.GetPort(ctx, ident)
		if err != nil {
			return err
		}
		nodeUUID = port.NodeUUID
	case objVolumeConnector:
		notFound = func() error {
			return ironwork.Errorf(ironwork.ENOTFOUND, "Volume connector %s could not be found.", ident)
		}
		c, err := s.store.GetVolumeConnector(ctx, ident)
		if err != nil {
			return err
		}
		nodeUUID = c.NodeUUID
	case objVolumeTarget:
		notFound = func() error {
			return ironwork.Errorf(ironwork.ENOTFOUND, "Volume target %s could not be found.", ident)
		}
		vt, err := s.store.GetVolumeTarget(ctx, ident)
		if err != nil {
			return err
		}
		nodeUUID = vt.NodeUUID
	default:
		notFound = func() error { return ironwork.Errorf(ironwork.ENOTFOUND, "Portgroup %s could not be found.", ident) }
		pg, err := s.store.GetPortgroup(ctx, ident)
		if err != nil {
			return err
		}
		nodeUUID = pg.NodeUUID
	}
	t := policy.Target{Node: true}
	if n, err := s.store.GetNode(ctx, nodeUUID); err == nil {
		t = nodeTarget(n)
	}
	if !s.policy.Authorize("baremetal:node:get", p, t) {
		return notFound()
	}
	if !s.policy.Authorize(g.rule, p, t) {
		return forbidden(g.rule)
	}
	return nil
}

// authorizePortCreate checks a port's or portgroup's creation against the node its body names
// (Ironic lets the node's owner administrators create them); refused, it is a 403 whether or
// not the caller may see the node, as in Ironic. The body is read and put back for the handler, which reports its errors.
func (s *Server) authorizePortCreate(r *http.Request, p policy.Principal, rule string) error {
	data, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(data))
	if err != nil {
		return nil // the handler reads the body again and reports the error
	}
	var body struct {
		NodeUUID string `json:"node_uuid"`
	}
	var t policy.Target
	if json.Unmarshal(data, &body) == nil && body.NodeUUID != "" {
		if n, err := s.store.GetNode(r.Context(), body.NodeUUID); err == nil {
			t = nodeTarget(n)
		}
	}
	if !s.policy.Authorize(rule, p, t) {
		return forbidden(rule)
	}
	return nil
}

// allocationOwner applies Ironic's rule for a project caller's new allocation: without an owner
// it gets the caller's project; with another project's, it is refused unless the caller passes
// baremetal:allocation:create_restricted.
func (s *Server) allocationOwner(ctx context.Context, a *ironwork.Allocation) error {
	p := PrincipalOf(ctx)
	if p.Unrestricted || p.System {
		return nil
	}
	if a.Owner == "" {
		a.Owner = p.ProjectID
		return nil
	}
	if a.Owner != p.ProjectID && !s.policy.Authorize("baremetal:allocation:create_restricted", p, policy.Target{}) {
		return ironwork.Errorf(ironwork.EFORBIDDEN, "Cannot create allocation with an owner Project ID value %s not matching the requester Project ID %s. Policy baremetal:allocation:create_restricted is required for this capability.",
			a.Owner, p.ProjectID)
	}
	return nil
}

// nodePatchRules are Ironic's rules for PATCH paths, by path prefix, in its order.
var nodePatchRules = []struct{ prefix, rule string }{
	{"/instance_info", "baremetal:node:update_instance_info"},
	{"/extra", "baremetal:node:update_extra"},
	{"/driver_info", "baremetal:node:update:driver_info"},
	{"/properties", "baremetal:node:update:properties"},
	{"/chassis_uuid", "baremetal:node:update:chassis_uuid"},
	{"/instance_uuid", "baremetal:node:update:instance_uuid"},
	{"/instance_name", "baremetal:node:update_instance_info"},
	{"/lessee", "baremetal:node:update:lessee"},
	{"/owner", "baremetal:node:update:owner"},
	{"/driver", "baremetal:node:update:driver_interfaces"},
	{"/network_data", "baremetal:node:update:network_data"},
	{"/conductor_group", "baremetal:node:update:conductor_group"},
	{"/name", "baremetal:node:update:name"},
	{"/retired", "baremetal:node:update:retired"},
	{"/shard", "baremetal:node:update:shard"},
	{"/parent_node", "baremetal:node:update:parent_node"},
	{"/disable_power_off", "baremetal:node:update:disable_power_off"},
}

// nodePatchPolicies are the rules a node PATCH needs, as Ironic picks them: one per path by
// prefix, *_interface paths need update:driver_interfaces, turning automated_clean off needs
// disable_cleaning, and any other path (or none) needs update.
func nodePatchPolicies(ops []patchOp) []string {
	var rules []string
	generic := false
	for _, op := range ops {
		found := false
		for _, pr := range nodePatchRules {
			if strings.HasPrefix(op.Path, pr.prefix) {
				rules = append(rules, pr.rule)
				found = true
				break
			}
		}
		if !found {
			root := strings.TrimPrefix(op.Path, "/")
			if kind, ok := strings.CutSuffix(root, "_interface"); ok && isInterfaceKind(kind) {
				rules = append(rules, "baremetal:node:update:driver_interfaces")
				found = true
			} else if strings.HasPrefix(op.Path, "/automated_clean") {
				if b, ok := op.Value.(bool); ok && !b {
					rules = append(rules, "baremetal:node:disable_cleaning")
					found = true
				} else if s, ok := op.Value.(string); ok {
					if b, err := parseBool("automated_clean", s); err == nil && !b {
						rules = append(rules, "baremetal:node:disable_cleaning")
						found = true
					}
				}
			}
		}
		if !found {
			generic = true
		}
	}
	if generic || len(rules) == 0 {
		rules = append(rules, "baremetal:node:update")
	}
	return rules
}

func isInterfaceKind(kind string) bool {
	for _, k := range ironwork.InterfaceKinds {
		if k.Field() == kind+"_interface" {
			return true
		}
	}
	return false
}

// authorizeNodePatch checks every rule a PATCH of n needs (the node is visible: the route's
// guard checked that), and, for an active node, Ironic's update_owner_provisioned for an owner
// change.
func (s *Server) authorizeNodePatch(ctx context.Context, n *ironwork.Node, ops []patchOp) error {
	p := PrincipalOf(ctx)
	if p.Unrestricted {
		return nil
	}
	t := nodeTarget(n)
	for _, rule := range nodePatchPolicies(ops) {
		if !s.policy.Authorize(rule, p, t) {
			return forbidden(rule)
		}
	}
	return nil
}

// authorizeSteps applies Ironic's extra rules for a provision-state change whose body names
// clean or service steps (baremetal:node:set_provision_state:clean_steps, :service_steps).
// The body is read and put back for the handler, which validates it.
func (s *Server) authorizeSteps(r *http.Request, p policy.Principal, n *ironwork.Node) error {
	data, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(data))
	if err != nil {
		return nil // the handler reads the body again and reports the error
	}
	var body struct {
		CleanSteps   []any `json:"clean_steps"`
		ServiceSteps []any `json:"service_steps"`
		Runbook      any   `json:"runbook"`
	}
	json.Unmarshal(data, &body) // a body that does not decode is the handler's to refuse
	if ident, ok := body.Runbook.(string); ok && ident != "" {
		// baremetal:runbook:use, against the runbook's owner; a runbook that does not exist
		// is the handler's to report.
		if b, err := s.store.GetRunbook(r.Context(), ident); err == nil {
			if err := s.authorizeRunbookUse(r.Context(), b); err != nil {
				return err
			}
		}
	}
	for _, rule := range []struct {
		given bool
		name  string
	}{{len(body.CleanSteps) > 0, "baremetal:node:set_provision_state:clean_steps"},
		{len(body.ServiceSteps) > 0, "baremetal:node:set_provision_state:service_steps"}} {
		if rule.given && !s.policy.Authorize(rule.name, p, nodeTarget(n)) {
			return forbidden(rule.name)
		}
	}
	return nil
}

// checkOwnerChange applies Ironic's limits on changing a node's owner: in state active only
// with baremetal:node:update_owner_provisioned, and never while an allocation with an owner
// holds the node (both 409, as in Ironic).
func (s *Server) checkOwnerChange(ctx context.Context, n *ironwork.Node, ops []patchOp) error {
	changes := false
	for _, op := range ops {
		if op.Path == "/owner" && op.Op != "remove" {
			changes = true
		}
	}
	if !changes {
		return nil
	}
	if n.ProvisionState == ironwork.Active && !s.policy.Authorize("baremetal:node:update_owner_provisioned", PrincipalOf(ctx), nodeTarget(n)) {
		return ironwork.Errorf(ironwork.ECONFLICT, "Cannot update owner of node \"%s\" while it is in state \"active\".", n.UUID)
	}
	if n.AllocationUUID != "" {
		if a, err := s.store.GetAllocation(ctx, n.AllocationUUID); err == nil && a.Owner != "" {
			return ironwork.Errorf(ironwork.ECONFLICT, "Cannot update owner of node \"%s\" while it is allocated to an allocation with an  owner.", n.UUID)
		}
	}
	return nil
}

// redactNode applies Ironic's node_sanitize to a rendered node for callers below
// baremetal:node:get:filter_threshold: last_error, reservation, driver_internal_info and
// driver_info are replaced by a note naming the rule that would show them.
func (s *Server) redactNode(ctx context.Context, n *ironwork.Node, out object) object {
	if s.seesWholeNodes(ctx) {
		return out
	}
	p := PrincipalOf(ctx)
	t := nodeTarget(n)
	for i, m := range out {
		switch m.k {
		case "last_error":
			if !s.policy.Authorize("baremetal:node:get:last_error", p, t) {
				out[i].v = "** Value Redacted - Requires baremetal:node:get:last_error permission. **"
			}
		case "reservation":
			if !s.policy.Authorize("baremetal:node:get:reservation", p, t) {
				out[i].v = "** Redacted - requires baremetal:node:get:reservation permission. **"
			}
		case "driver_internal_info":
			if !s.policy.Authorize("baremetal:node:get:driver_internal_info", p, t) {
				out[i].v = map[string]any{"content": "** Redacted - Requires baremetal:node:get:driver_internal_info permission. **"}
			}
		case "driver_info":
			if !s.policy.Authorize("baremetal:node:get:driver_info", p, t) {
				out[i].v = map[string]any{"content": "** Redacted - requires baremetal:node:get:driver_info permission. **"}
			}
		}
	}
	return out
}

// seesWholeNodes reports whether the caller sees nodes unredacted (redactNode changes nothing
// for it): an unrestricted caller, or one that passes baremetal:node:get:filter_threshold.
func (s *Server) seesWholeNodes(ctx context.Context) bool {
	p := PrincipalOf(ctx)
	return p.Unrestricted || s.policy.Authorize("baremetal:node:get:filter_threshold", p, policy.Target{})
}

// authorizeRunbook applies Ironic's check_runbook_policy_and_retrieve: rule is checked against
// the runbook's owner and a caller that fails it gets 403 (runbooks are not hidden as nodes
// are), except that anyone may read a public runbook (GET /v1/runbooks/{ident} only, as
// Ironic's check_and_retrieve_public_runbook). A PATCH that sets owner or public needs
// baremetal:runbook:update:owner or :public (and :update for any other path).
func (s *Server) authorizeRunbook(r *http.Request, p policy.Principal, rule string) error {
	b, err := s.loadRunbook(r)
	if err != nil {
		return err
	}
	t := policy.Target{Runbook: true, RunbookOwner: b.Owner}
	rules := []string{rule}
	if r.Method == http.MethodPatch {
		rules = runbookPatchRules(r)
	}
	for _, rl := range rules {
		if s.policy.Authorize(rl, p, t) {
			continue
		}
		if rl == "baremetal:runbook:get" && b.Public && !strings.HasSuffix(r.URL.Path, "/traits") {
			continue
		}
		return forbidden(rl)
	}
	return nil
}

// runbookPatchRules are the rules a runbook PATCH needs, from the paths it touches.
func runbookPatchRules(r *http.Request) []string {
	data, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(data))
	var ops []struct {
		Path string `json:"path"`
	}
	if err != nil || json.Unmarshal(data, &ops) != nil {
		return []string{"baremetal:runbook:update"} // the handler refuses the body
	}
	var rules []string
	generic := len(ops) == 0
	for _, op := range ops {
		switch {
		case strings.HasPrefix(op.Path, "/owner"):
			rules = append(rules, "baremetal:runbook:update:owner")
		case strings.HasPrefix(op.Path, "/public"):
			rules = append(rules, "baremetal:runbook:update:public")
		default:
			generic = true
		}
	}
	if generic {
		rules = append(rules, "baremetal:runbook:update")
	}
	return rules
}

// authorizeRunbookUse is Ironic's baremetal:runbook:use, checked against the runbook's owner
// when a provision request names it (403).
func (s *Server) authorizeRunbookUse(ctx context.Context, b *ironwork.Runbook) error {
	const rule = "baremetal:runbook:use"
	if !s.policy.Authorize(rule, PrincipalOf(ctx), policy.Target{Runbook: true, RunbookOwner: b.Owner}) {
		return forbidden(rule)
	}
	return nil
}
