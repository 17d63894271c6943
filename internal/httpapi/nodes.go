package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// nodeRoutes registers /v1/nodes and the routes under a node (states, traits, management,
// history, its ports and portgroups); VIFs and allocations register their own.
func (s *Server) nodeRoutes() {
	s.resource("/v1/nodes", resource{list: s.listNodes(false), detail: s.listNodes(true), create: s.createNode,
		get: s.getNode, patch: s.patchNode, del: s.deleteNode})
	s.handle("GET /v1/nodes/{ident}/states", s.nodeStates)
	s.handle("GET /v1/nodes/{ident}/traits", s.getTraits)
	s.handle("PUT /v1/nodes/{ident}/traits", s.setTraits)
	s.handle("PUT /v1/nodes/{ident}/traits/{trait}", s.addTrait)
	s.handle("DELETE /v1/nodes/{ident}/traits", s.deleteTraits)
	s.handle("DELETE /v1/nodes/{ident}/traits/{trait}", s.deleteTrait)
	s.handle("PUT /v1/nodes/{ident}/states/provision", s.provision)
	s.handle("PUT /v1/nodes/{ident}/states/power", s.power)
	s.handle("GET /v1/nodes/{ident}/validate", s.validate)
	s.handle("GET /v1/nodes/{ident}/management/boot_device", s.getBootDevice)
	s.handle("PUT /v1/nodes/{ident}/management/boot_device", s.setBootDevice)
	s.handle("GET /v1/nodes/{ident}/management/boot_device/supported", s.supportedBootDevices)
	s.handle("PUT /v1/nodes/{ident}/management/inject_nmi", s.injectNMI)
	s.handle("PUT /v1/nodes/{ident}/states/raid", s.raid)
	s.handle("GET /v1/nodes/{ident}/history", s.history)
	s.handle("GET /v1/nodes/{ident}/history/{event}", s.historyEvent)
	s.handle("GET /v1/nodes/{ident}/ports", s.nodePorts(false))
	s.handle("GET /v1/nodes/{ident}/ports/detail", s.nodePorts(true))
	s.handle("GET /v1/nodes/{ident}/portgroups", s.nodePortgroups(false))
	s.handle("GET /v1/nodes/{ident}/portgroups/detail", s.nodePortgroups(true))
	s.handle("PUT /v1/nodes/{ident}/maintenance", s.maintenance(true))
	s.handle("DELETE /v1/nodes/{ident}/maintenance", s.maintenance(false))
	s.handle("PUT /v1/nodes/{ident}/states/boot_mode", s.targetAction(setBootMode))
	s.handle("PUT /v1/nodes/{ident}/states/secure_boot", s.targetAction(setSecureBoot))
}

// renderNode shows a node at version ver, restricted to fields when it is not nil.
func (s *Server) renderNode(r *http.Request, n *ironwork.Node, fields []string) object {
	return s.renderNodeWith(r, n, fields, nil)
}

// renderNodeWith is renderNode with the values of some fields given by over (see
// fieldTable.render).
func (s *Server) renderNodeWith(r *http.Request, n *ironwork.Node, fields []string, over func(i int) (any, bool)) object {
	out := s.renderNodeBody(r.Context(), n, fields, over)
	base := s.baseURL(r)
	ver := versionOf(r.Context())
	out = append(out, kv{"links", nodeLinks{base, n.UUID, ""}})
	if nodeShowsConductor(ver, fields) {
		var c any
		if s.opts.Ring != nil {
			c = optStr(s.opts.Ring.ConductorFor(n))
		}
		out = append(out, kv{"conductor", c})
	}
	if fields == nil {
		out = append(out, kv{"ports", nodeLinks{base, n.UUID, "/ports"}})
		if ver >= 14 {
			out = append(out, kv{"states", nodeLinks{base, n.UUID, "/states"}})
		}
		if ver >= vPortgroupSubs {
			out = append(out, kv{"portgroups", nodeLinks{base, n.UUID, "/portgroups"}})
		}
		if ver >= 32 {
			out = append(out, kv{"volume", nodeLinks{base, n.UUID, "/volume"}})
		}
	}
	return out
}

// renderNodeBody is the part of renderNodeWith that depends on the node's stored state, the
// version, the fields and the caller (redaction): every member before the links.
func (s *Server) renderNodeBody(ctx context.Context, n *ironwork.Node, fields []string, over func(i int) (any, bool)) object {
	ver := versionOf(ctx)
	out := s.nodeTable.render(n, ver, fields, over)
	for i, m := range out {
		if m.k == "provision_state" {
			switch {
			case ver < 2 && n.ProvisionState == ironwork.Available:
				out[i].v = nil
			case ver < 39 && n.ProvisionState == ironwork.InspectWait:
				out[i].v = string(ironwork.Inspecting)
			}
		}
	}
	return s.redactNode(ctx, n, out)
}

// nodeShowsConductor reports whether a node shown at ver with fields has a conductor member.
func nodeShowsConductor(ver int, fields []string) bool {
	return ver >= vConductors && (fields == nil || slices.Contains(fields, "conductor"))
}

// appendNodeTail appends what renderNodeWith puts after renderNodeBody's members, and the
// closing brace, to b, which holds the body's members after its opening brace (and nothing
// more when the body is empty): the links, the conductor (given) and the sub-resource links.
func appendNodeTail(b []byte, base, uuid, conductor string, ver int, fields []string) []byte {
	sep := func(b []byte) []byte {
		if b[len(b)-1] == '{' {
			return b
		}
		return append(b, ',')
	}
	b = append(sep(b), `"links":`...)
	b = nodeLinks{base, uuid, ""}.appendJSON(b)
	if nodeShowsConductor(ver, fields) {
		b = append(b, `,"conductor":`...)
		if conductor == "" {
			b = append(b, "null"...)
		} else {
			b = appendString(b, conductor)
		}
	}
	if fields == nil {
		b = append(b, `,"ports":`...)
		b = nodeLinks{base, uuid, "/ports"}.appendJSON(b)
		if ver >= 14 {
			b = append(b, `,"states":`...)
			b = nodeLinks{base, uuid, "/states"}.appendJSON(b)
		}
		if ver >= vPortgroupSubs {
			b = append(b, `,"portgroups":`...)
			b = nodeLinks{base, uuid, "/portgroups"}.appendJSON(b)
		}
		if ver >= 32 {
			b = append(b, `,"volume":`...)
			b = nodeLinks{base, uuid, "/volume"}.appendJSON(b)
		}
	}
	return append(b, '}')
}

// loadNode finds a node by UUID or, from 1.5, by logical name.
func (s *Server) loadNode(ctx context.Context, ident string) (*ironwork.Node, error) {
	if err := checkNodeIdent(ctx, ident); err != nil {
		return nil, err
	}
	return s.store.GetNode(ctx, ident)
}

func checkNodeIdent(ctx context.Context, ident string) error {
	if ironwork.IsUUID(ident) {
		return nil
	}
	if versionOf(ctx) < 5 {
		return ironwork.Errorf(ironwork.ENOTFOUND, "Node %s could not be found.", ident)
	}
	if !validNodeName(ident, versionOf(ctx)) {
		return invalid("Expected a logical name or UUID but received %s.", ident)
	}
	return nil
}

var validFaults = []string{"power failure", "clean failure", "rescue abort failure", "service failure"}

// nodeFilter reads the filters of a node list, refusing those newer than the version.
func nodeFilter(r *http.Request, keep map[string][]string) (sqlstore.NodeFilter, error) {
	q := r.URL.Query()
	ver := versionOf(r.Context())
	var f sqlstore.NodeFilter
	allowed := map[string]int{
		"limit": 1, "marker": 1, "sort_key": 1, "sort_dir": 1, "fields": 1, "detail": 1,
		"chassis_uuid": 1, "instance_uuid": 1, "associated": 1, "maintenance": 1, "retired": 1,
		"project": 1, "description_contains": 1, "provision_state": vProvisionFilter,
		"driver": vDriverFilter, "resource_class": vResourceClass, "fault": vFault,
		"conductor_group": vConductorGroup, "conductor": vConductors, "owner": vOwner,
		"lessee": vLessee, "shard": vShards, "sharded": vShards, "include_children": vParentNode,
		"parent_node": vParentNode, "instance_name": vInstanceName,
	}
	var unexpected []string
	for k := range q {
		since, ok := allowed[k]
		if !ok {
			unexpected = append(unexpected, k)
			continue
		}
		if since > ver {
			return f, tooNew(since)
		}
		switch k {
		case "limit", "marker", "sort_key", "sort_dir", "fields", "detail":
		default:
			keep[k] = q[k]
		}
	}
	if len(unexpected) > 0 {
		slices.Sort(unexpected)
		return f, invalid("Unexpected arguments: %s", strings.Join(unexpected, ", "))
	}
	boolParam := func(name string, dst **bool) error {
		if v, ok := q[name]; ok {
			b, err := parseBool(name, v[0])
			if err != nil {
				return err
			}
			*dst = &b
		}
		return nil
	}
	for name, dst := range map[string]**bool{"associated": &f.Associated, "maintenance": &f.Maintenance, "retired": &f.Retired, "sharded": &f.Sharded} {
		if err := boolParam(name, dst); err != nil {
			return f, err
		}
	}
	for _, u := range []struct {
		name string
		dst  *string
	}{{"chassis_uuid", &f.ChassisUUID}, {"instance_uuid", &f.InstanceUUID}} {
		if v := q.Get(u.name); v != "" {
			if !ironwork.IsUUID(v) {
				return f, invalid("Expected UUID for %s: %s", u.name, v)
			}
			*u.dst = canonicalUUID(v)
		}
	}
	if v := q.Get("provision_state"); v != "" {
		if !knownProvisionState(v) {
			return f, invalid("Provision state \"%s\" is not valid", v)
		}
		f.ProvisionState = v
	}
	if v := q.Get("fault"); v != "" {
		if !slices.Contains(validFaults, v) {
			return f, invalid("Unrecognized fault \"%s\" is specified, allowed faults are (%s)", v, strings.Join(validFaults, ", "))
		}
		f.Fault = v
	}
	f.Driver, f.ResourceClass, f.Owner, f.Lessee = q.Get("driver"), q.Get("resource_class"), q.Get("owner"), q.Get("lessee")
	f.Project, f.DescriptionContains, f.ParentNode = q.Get("project"), q.Get("description_contains"), q.Get("parent_node")
	f.InstanceName = q.Get("instance_name")
	if _, ok := q["conductor_group"]; ok {
		g := q.Get("conductor_group")
		f.ConductorGroup = &g
	}
	if v := q.Get("shard"); v != "" {
		f.Shards = splitList(v)
	}
	includeChildren := false
	if v, ok := q["include_children"]; ok {
		b, err := parseBool("include_children", v[0])
		if err != nil {
			return f, err
		}
		includeChildren = b
	}
	f.ExcludeChildren = !includeChildren && f.ParentNode == ""
	return f, nil
}

func knownProvisionState(s string) bool {
	switch ironwork.ProvisionState(s) {
	case ironwork.Enroll, ironwork.Verifying, ironwork.Manageable, ironwork.Inspecting, ironwork.InspectWait,
		ironwork.InspectFailed, ironwork.Cleaning, ironwork.CleanWait, ironwork.CleanHold, ironwork.CleanFailed,
		ironwork.Available, ironwork.Deploying, ironwork.DeployWait, ironwork.DeployHold, ironwork.DeployFailed,
		ironwork.Active, ironwork.Deleting, ironwork.ProvisionError, ironwork.Rescuing, ironwork.RescueWait,
		ironwork.RescueFailed, ironwork.Rescue, ironwork.Unrescuing, ironwork.UnrescueFailed, ironwork.Adopting,
		ironwork.AdoptFailed, ironwork.Servicing, ironwork.ServiceWait, ironwork.ServiceHold, ironwork.ServiceFailed:
		return true
	}
	return false
}

// nodeSortRefused are node fields Ironic refuses to sort by.
var nodeSortRefused = []string{"properties", "driver_info", "extra", "instance_info", "driver_internal_info",
	"clean_step", "deploy_step", "raid_config", "target_raid_config", "traits", "network_data", "service_step"}

func (s *Server) listNodes(detailPath bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		return s.writeNodeList(w, r, detailPath, nil)
	}
}

// writeNodeList serves a node list; chassisUUID restricts it to one chassis.
func (s *Server) writeNodeList(w http.ResponseWriter, r *http.Request, detailPath bool, restrict func(*sqlstore.NodeFilter)) error {
	ver := versionOf(r.Context())
	p, err := s.parseList(r, detailPath)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	if _, ok := q["fields"]; ok && detailPath {
		return invalid("Unexpected arguments: fields")
	}
	t := s.nodeTable
	fields, err := parseFields(t, q.Get("fields"), ver, "conductor", "allocation_uuid", "chassis_uuid")
	if err != nil {
		return err
	}
	if fields != nil && p.detail {
		return invalid("Can not specify ?detail=True and fields in the same request.")
	}
	if slices.Contains(nodeSortRefused, p.page.SortKey) {
		return invalid("The sort_key value %s is an invalid field for sorting", p.page.SortKey)
	}
	if f, ok := t.lookup(p.page.SortKey); ok && f.since > ver {
		return notAcceptable("Request not acceptable.")
	}
	f, err := nodeFilter(r, p.keep)
	if err != nil {
		return err
	}
	if restrict != nil {
		restrict(&f)
	}
	if lp := listProject(r.Context()); lp != "" {
		f.Project = lp
	}
	show := fields
	if show == nil && !p.detail {
		show = nodeDefaultFields
	}
	p.fields = fields
	if fields == nil && !p.detail && !detailPath {
		p.fields = nodeDefaultFields
	}
	path := "nodes"
	if detailPath {
		path = "nodes/detail"
	}
	if s.cache != nil && s.seesWholeNodes(r.Context()) {
		return s.writeCachedNodeList(w, r, f, p, show, path)
	}
	nodes, err := s.store.ListNodesRaw(r.Context(), f, p.page)
	if err != nil {
		return err
	}
	if c := q.Get("conductor"); c != "" {
		nodes = slices.DeleteFunc(nodes, func(n *sqlstore.RawNode) bool {
			return s.opts.Ring == nil || s.opts.Ring.ConductorFor(n.Node) != c
		})
	}
	items := make([]object, 0, len(nodes))
	last := ""
	var st storedNode
	for _, rn := range nodes {
		if err := st.load(s, rn, show); err != nil {
			// As ListNodes: the node is left out (and is not the marker of the next page).
			s.log.ErrorContext(r.Context(), "skip undecodable node", "node", rn.Node.UUID, "error", err)
			continue
		}
		items = append(items, s.renderNodeWith(r, rn.Node, show, st.value))
		last = rn.Node.UUID
	}
	return s.writeJSON(w, http.StatusOK, s.listBody(r, path, "nodes", "nodes_links", items, p, last))
}

func (s *Server) getNode(w http.ResponseWriter, r *http.Request) error {
	ver := versionOf(r.Context())
	fields, err := parseFields(s.nodeTable, r.URL.Query().Get("fields"), ver, "conductor", "allocation_uuid", "chassis_uuid")
	if err != nil {
		return err
	}
	ident := r.PathValue("ident")
	if s.cache != nil && s.seesWholeNodes(r.Context()) {
		if err := checkNodeIdent(r.Context(), ident); err != nil {
			return err
		}
		if ok, err := s.writeCachedNode(w, r, ident, fields); ok {
			return err
		}
	}
	n, err := s.loadNode(r.Context(), ident)
	if err != nil {
		return err
	}
	return s.writeJSON(w, http.StatusOK, s.renderNode(r, n, fields))
}

func (s *Server) createNode(w http.ResponseWriter, r *http.Request) error {
	ver := versionOf(r.Context())
	body, err := decodeBody(r, "node")
	if err != nil {
		return err
	}
	if _, ok := body["driver"]; !ok {
		return schemaError("node", "'driver' is a required property")
	}
	n := &ironwork.Node{}
	if err := s.nodeTable.apply(n, body, ver, canCreate); err != nil {
		return err
	}
	if own, ok := r.Context().Value(ownProjectKey{}).(string); ok {
		if n.Owner != "" && n.Owner != own {
			return invalid("Cannot create a node as a project scoped admin with an owner other than your own project.")
		}
		n.Owner = own
	}
	if n.Name != "" {
		if ver < 5 {
			return tooNew(5)
		}
		if err := checkNodeName(n.Name, ver, true, ""); err != nil {
			return err
		}
	}
	if err := checkProperties(n.Properties); err != nil {
		return err
	}
	n.ProvisionState = ironwork.Enroll
	if ver < 11 {
		n.ProvisionState = ironwork.Available
	}
	syncInstanceName(n)
	if err := s.resolveParent(r.Context(), n); err != nil {
		return err
	}
	if err := s.resolveDriver(n); err != nil {
		return err
	}
	if err := s.store.CreateNode(r.Context(), n); err != nil {
		return err
	}
	s.prerender(r.Context(), n.ID)
	w.Header().Set("Location", s.baseURL(r)+"/v1/nodes/"+n.UUID)
	return s.writeJSON(w, http.StatusCreated, s.renderNode(r, n, nil))
}

// resolveDriver fills in a node's default interfaces and checks the named ones.
func (s *Server) resolveDriver(n *ironwork.Node) error {
	if !s.drivers.HasHardwareType(n.Driver) {
		return invalid("No valid host was found. Reason: No conductor service registered which supports driver %s for conductor group \"%s\". Ensure the driver is valid and enabled.",
			n.Driver, n.ConductorGroup)
	}
	return s.drivers.ResolveInterfaces(n)
}

// syncInstanceName names the instance from instance_info's display_name (Nova's) when nothing
// else names it, as Ironic from 1.104.
func syncInstanceName(n *ironwork.Node) {
	if name, ok := n.InstanceInfo["display_name"].(string); ok && name != "" && n.InstanceName == "" {
		n.InstanceName = name
	}
}

func (s *Server) resolveParent(ctx context.Context, n *ironwork.Node) error {
	if n.ParentNode == "" {
		return nil
	}
	p, err := s.store.GetNode(ctx, n.ParentNode)
	if err != nil || p.UUID == n.UUID || p.Owner != n.Owner {
		return invalid("Unable to apply the requested parent_node '%s'. Requested value was invalid.", n.ParentNode)
	}
	n.ParentNode = p.UUID
	return nil
}

// checkProperties enforces Ironic's rules for well-known node properties.
func checkProperties(p ironwork.JSONObject) error {
	for _, k := range []string{"local_gb", "memory_mb"} {
		v, ok := p[k]
		if !ok {
			continue
		}
		var n int64
		var good bool
		switch x := v.(type) {
		case float64:
			n, good = int64(x), x == float64(int64(x))
		case string:
			i, ok := atoi(x)
			n, good = int64(i), ok
		}
		if !good || n < 0 {
			return invalid("Invalid value for %s: %v. It must be a non-negative integer.", k, v)
		}
	}
	return nil
}

func lockedError(n *ironwork.Node) error {
	return ironwork.Errorf(ironwork.ELOCKED, "Node %s is locked by host %s, please retry after the current operation is completed.",
		n.UUID, n.Reservation)
}

func (s *Server) patchNode(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	ver := versionOf(ctx)
	ident := r.PathValue("ident")
	if err := checkNodeIdent(ctx, ident); err != nil {
		return err
	}
	ops, err := readPatch(r)
	if err != nil {
		return err
	}
	if p := PrincipalOf(ctx); !p.Unrestricted {
		// The rules come before every other check, as in Ironic: a caller learns nothing
		// about a node it may not change.
		n, err := s.loadNode(ctx, ident)
		if err != nil {
			return err
		}
		if err := s.authorizeNodePatch(ctx, n, ops); err != nil {
			return err
		}
	}
	reset := false
	if v, ok := r.URL.Query()["reset_interfaces"]; ok {
		if ver < vResetInterfaces {
			return tooNew(vResetInterfaces)
		}
		if reset, err = parseBool("reset_interfaces", v[0]); err != nil {
			return err
		}
		if !slices.ContainsFunc(ops, func(op patchOp) bool { return op.root() == "driver" }) {
			return invalid("The reset_interfaces parameter can only be used when changing the node's driver.")
		}
	}
	t := s.nodeTable
	var parent string
	for _, op := range ops {
		if op.root() == "parent_node" && op.Op != "remove" {
			if s, ok := op.Value.(string); ok {
				parent = s
			}
		}
	}
	var parentNode *ironwork.Node
	if parent != "" {
		if parentNode, err = s.store.GetNode(ctx, parent); err != nil {
			return invalid("Unable to apply the requested parent_node '%s'. Requested value was invalid.", parent)
		}
	}
	n, err := s.store.UpdateNode(ctx, ident, func(n *ironwork.Node) error {
		if n.Reservation != "" {
			return lockedError(n)
		}
		onlyRemoveInstance := n.Maintenance && len(ops) == 1 && ops[0].Op == "remove" && ops[0].Path == "/instance_uuid"
		if !onlyRemoveInstance && n.TargetProvisionState != "" && !slices.Contains(updateAllowed, n.ProvisionState) {
			return ironwork.Errorf(ironwork.ECONFLICT, "Node %s can not be updated while a state transition is in progress.", ident)
		}
		if n.ProvisionState == ironwork.Inspecting && ver >= 39 {
			return ironwork.Errorf(ironwork.ECONFLICT, "Cannot update node \"%s\" while it is in state \"inspecting\".", n.UUID)
		}
		if err := s.authorizeNodePatch(ctx, n, ops); err != nil {
			return err // checked again in the transaction: owner or lessee may have changed
		}
		if err := s.checkOwnerChange(ctx, n, ops); err != nil {
			return err
		}
		old := *n
		oldIfaces := make(map[ironwork.InterfaceKind]string, len(n.Interfaces))
		for k, v := range n.Interfaces {
			oldIfaces[k] = v
		}
		changed, err := patchObject(t, n, ops, ver)
		if err != nil {
			return err
		}
		return s.checkNodeUpdate(&old, oldIfaces, n, changed, ver, reset, ident, parentNode)
	})
	if err != nil {
		return err
	}
	return s.writeJSON(w, http.StatusOK, s.renderNode(r, n, nil))
}

// checkNodeUpdate applies Ironic's rules to a patched node: old is the node before the patch.
func (s *Server) checkNodeUpdate(old *ironwork.Node, oldIfaces map[ironwork.InterfaceKind]string, n *ironwork.Node,
	changed []string, ver int, reset bool, ident string, parent *ironwork.Node) error {
	has := func(f string) bool { return slices.Contains(changed, f) }
	if has("name") && n.Name != "" {
		if err := checkNodeName(n.Name, ver, false, ident); err != nil {
			return err
		}
	}
	if has("chassis_uuid") && n.ChassisUUID == "" && ver < vRemoveChassis {
		return notAcceptable("Request not acceptable.")
	}
	if has("instance_info") {
		syncInstanceName(n)
	}
	if has("properties") {
		if err := checkProperties(n.Properties); err != nil {
			return err
		}
	}
	if has("parent_node") {
		if parent != nil {
			if parent.UUID == n.UUID || parent.Owner != n.Owner {
				return invalid("Unable to apply the requested parent_node '%s'. Requested value was invalid.", n.ParentNode)
			}
			n.ParentNode = parent.UUID
		}
	}
	ifaceChanged := false
	for _, k := range ironwork.InterfaceKinds {
		if has(k.Field()) {
			ifaceChanged = true
		}
	}
	if (ifaceChanged || has("driver")) && !n.Maintenance && !slices.Contains(interfaceChangeAllowed, n.ProvisionState) {
		what := "driver"
		for _, k := range ironwork.InterfaceKinds {
			if has(k.Field()) {
				what = k.Field()
				break
			}
		}
		return ironwork.Errorf(ironwork.ECONFLICT, "Node %s can not have %s updated unless it is in one of allowed (enroll, inspecting, inspect wait, manageable, available) states or in maintenance mode. Current state is '%s'.",
			n.UUID, what, n.ProvisionState)
	}
	if has("driver") && n.ConsoleEnabled {
		return ironwork.Errorf(ironwork.ECONFLICT, "Node %s can not update the driver while the console is enabled. Please stop the console first.", ident)
	}
	if has("driver") && reset {
		for _, k := range ironwork.InterfaceKinds {
			if !has(k.Field()) {
				n.Interfaces[k] = ""
			}
		}
	}
	if has("driver") || ifaceChanged {
		if err := s.resolveDriver(n); err != nil {
			return err
		}
	}
	if has("maintenance") && !n.Maintenance {
		n.MaintenanceReason, n.Fault = "", ""
	}
	if has("protected") || has("protected_reason") {
		if n.Protected && !old.Protected && n.ProvisionState != ironwork.Active && n.ProvisionState != ironwork.Rescue {
			return ironwork.Errorf(ironwork.ECONFLICT, "Node %s can only be made protected in provision states 'active' or 'rescue', the current state is '%s'",
				n.UUID, n.ProvisionState)
		}
		if !n.Protected {
			if has("protected_reason") && n.ProtectedReason != "" {
				return invalid("The protected_reason field can only be set when protected is True")
			}
			n.ProtectedReason = ""
		}
	}
	if has("retired") || has("retired_reason") {
		if n.Retired && !old.Retired && n.ProvisionState == ironwork.Available {
			return ironwork.Errorf(ironwork.ECONFLICT, "Node %s can not be retired in state available: move it to manageable first.", n.UUID)
		}
		if !n.Retired {
			if has("retired_reason") && n.RetiredReason != "" {
				return invalid("The retired_reason field can only be set when retired is True")
			}
			n.RetiredReason = ""
		}
	}
	if has("instance_uuid") && old.InstanceUUID != "" && n.InstanceUUID != "" && n.InstanceUUID != old.InstanceUUID {
		return ironwork.Errorf(ironwork.ECONFLICT, "Node %s is associated with instance %s.", n.UUID, old.InstanceUUID)
	}
	if has("resource_class") && old.ResourceClass != "" && !slices.Contains(interfaceChangeAllowed, n.ProvisionState) {
		return ironwork.Errorf(ironwork.ECONFLICT, "Node %s can not have resource_class updated unless it is in one of allowed (enroll, inspecting, inspect wait, manageable, available) states. Current state is '%s'.",
			n.UUID, n.ProvisionState)
	}
	if has("conductor_group") && n.ConductorGroup != old.ConductorGroup {
		n.ConductorGroup = strings.ToLower(n.ConductorGroup)
	}
	return nil
}

func (s *Server) deleteNode(w http.ResponseWriter, r *http.Request) error {
	ident := r.PathValue("ident")
	if err := checkNodeIdent(r.Context(), ident); err != nil {
		return err
	}
	// A node whose console is served loses it first, as Ironic's destroy_node stops it; the
	// checks run before, so that a refused delete leaves the console alone.
	if n, err := s.store.GetNode(r.Context(), ident); err == nil && n.ConsoleEnabled && deleteRefusal(n) == nil {
		if c, err := s.cond(); err == nil {
			if err := conductor.Do(r.Context(), c, conductor.OpStopConsole, conductor.NodeRef{Node: n.UUID}); err != nil {
				s.log.Warn("stop the console of a node being deleted", "node", n.UUID, "error", err)
			}
		}
	}
	err := s.store.DeleteNode(r.Context(), ident, deleteRefusal)
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteRefusal says why a node cannot be deleted, or nil.
func deleteRefusal(n *ironwork.Node) error {
	if n.Reservation != "" {
		return lockedError(n)
	}
	if !n.Maintenance && n.InstanceUUID != "" {
		return ironwork.Errorf(ironwork.ECONFLICT, "Node %s is associated with instance %s.", n.UUID, n.InstanceUUID)
	}
	if n.Protected {
		return ironwork.Errorf(ironwork.EFORBIDDEN, "Node %s is protected and cannot be undeployed, rebuilt or deleted", n.UUID)
	}
	if !ironwork.CanDelete(n.ProvisionState, n.Maintenance) {
		return ironwork.Errorf(ironwork.ECONFLICT, "Can not delete node \"%s\" while it is in provision state \"%s\". Valid provision states to perform deletion are: \"('manageable', 'enroll', 'adopt failed', 'available')\", or set the node into maintenance mode",
			n.UUID, n.ProvisionState)
	}
	return nil
}

func (s *Server) nodeStates(w http.ResponseWriter, r *http.Request) error {
	n, err := s.loadNode(r.Context(), r.PathValue("ident"))
	if err != nil {
		return err
	}
	ver := versionOf(r.Context())
	ps := any(optStr(n.ProvisionState))
	if ver < 2 && n.ProvisionState == ironwork.Available {
		ps = nil
	}
	out := object{
		{"console_enabled", n.ConsoleEnabled}, {"last_error", optStr(n.LastError)},
		{"power_state", optStr(n.PowerState)}, {"provision_state", ps},
		{"target_power_state", optStr(n.TargetPowerState)}, {"target_provision_state", optStr(n.TargetProvisionState)},
		{"provision_updated_at", optTime(n.ProvisionUpdatedAt)},
	}
	if ver >= 12 {
		out = append(out, kv{"raid_config", obj(n.RAIDConfig)}, kv{"target_raid_config", obj(n.TargetRAIDConfig)})
	}
	if ver >= 75 {
		out = append(out, kv{"boot_mode", optStr(n.BootMode)}, kv{"secure_boot", optBool(n.SecureBoot)})
	}
	return s.writeJSON(w, http.StatusOK, out)
}
