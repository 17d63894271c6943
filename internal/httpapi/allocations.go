package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// Microversions of the allocation API.
const (
	vAllocationUpdate   = 57
	vAllocationBackfill = 58
	vAllocationOwner    = 60
)

func strList(kind, name string, v any, check func(string) error) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, schemaError(kind, "%s is not of type 'array', 'null'", pyRepr(v))
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			return nil, schemaError(kind, "%s is not of type 'string'", pyRepr(x))
		}
		if check != nil {
			if err := check(s); err != nil {
				return nil, err
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func allocationFields() fieldTable[ironwork.Allocation] {
	type A = ironwork.Allocation
	const k = "allocation"
	list := func(p func(*A) *[]string) func(*A) any {
		return func(a *A) any {
			if *p(a) == nil {
				return []string{}
			}
			return *p(a)
		}
	}
	return fieldTable[A]{kind: k, fields: []field[A]{
		uuidField[A](k, "uuid", vAllocations, canCreate, func(a *A) *string { return &a.UUID }),
		strField[A](k, "name", vAllocations, readWrite, func(a *A) *string { return &a.Name }, 255),
		roField[A]("node_uuid", vAllocations, func(a *A) any { return optStr(a.NodeUUID) }),
		roField[A]("state", vAllocations, func(a *A) any { return a.State }),
		roField[A]("last_error", vAllocations, func(a *A) any { return optStr(a.LastError) }),
		strField[A](k, "resource_class", vAllocations, canCreate, func(a *A) *string { return &a.ResourceClass }, 80),
		{name: "traits", since: vAllocations, access: canCreate, get: list(func(a *A) *[]string { return &a.Traits }),
			set: func(a *A, v any) error {
				ts, err := strList(k, "traits", v, checkTrait)
				a.Traits = ts
				return err
			}},
		{name: "candidate_nodes", since: vAllocations, access: canCreate, get: list(func(a *A) *[]string { return &a.CandidateNodes }),
			set: func(a *A, v any) error {
				ns, err := strList(k, "candidate_nodes", v, nil)
				a.CandidateNodes = ns
				return err
			}},
		objField[A](k, "extra", vAllocations, readWrite, func(a *A) *ironwork.JSONObject { return &a.Extra }, false),
		timeField[A]("created_at", func(a *A) *time.Time { return &a.CreatedAt }),
		optTimeField[A]("updated_at", vAllocations, func(a *A) **time.Time { return &a.UpdatedAt }),
		strField[A](k, "owner", vAllocationOwner, canCreate, func(a *A) *string { return &a.Owner }, 255),
		// Ironwork extension: capabilities the node must have.
		{name: "capabilities", since: vAllocations, access: canCreate,
			get: func(a *A) any {
				out := ironwork.JSONObject{}
				for k, v := range a.Capabilities {
					out[k] = v
				}
				return out
			},
			set: func(a *A, v any) error {
				if v == nil {
					a.Capabilities = nil
					return nil
				}
				m, ok := v.(map[string]any)
				if !ok {
					return schemaError(k, "%s is not of type 'object', 'null'", pyRepr(v))
				}
				a.Capabilities = map[string]string{}
				for ck, cv := range m {
					s, ok := cv.(string)
					if !ok || ck == "" || strings.ContainsAny(ck+s, ":,") {
						return schemaError(k, "capability %s: %s must be a string without ':' or ','", ck, pyRepr(cv))
					}
					a.Capabilities[ck] = s
				}
				return nil
			}},
	}}
}

func (s *Server) renderAllocation(r *http.Request, a *ironwork.Allocation, fields []string) object {
	// The links stay whatever fields asks for, as Ironic's sanitize_dict keeps them.
	out := allocationFields().render(a, versionOf(r.Context()), fields, nil)
	return append(out, kv{"links", links(s.baseURL(r), "allocations/"+a.UUID)})
}

func (s *Server) allocationSpec() listSpec[ironwork.Allocation] {
	return listSpec[ironwork.Allocation]{
		table: allocationFields(), path: "allocations", key: "allocations",
		sortRefused: []string{"extra", "traits", "candidate_nodes", "capabilities"},
		uuid:        func(a *ironwork.Allocation) string { return a.UUID },
		render:      s.renderAllocation,
		filters: map[string]int{"node": vAllocations, "resource_class": vAllocations, "state": vAllocations,
			"owner": vAllocationOwner, "fields": vAllocations},
	}
}

// allocationsAllowed hides the allocation API below 1.52 as Ironic does: 404 to reads and to
// anything under a node, 405 to writes of /v1/allocations.
func allocationsAllowed(r *http.Request) error {
	if versionOf(r.Context()) >= vAllocations {
		return nil
	}
	const msg = "The API version does not allow allocations"
	if r.Method == http.MethodGet || strings.HasPrefix(r.URL.Path, "/v1/nodes/") {
		return ironwork.Errorf(ironwork.ENOTFOUND, msg)
	}
	return methodRefused{msg}
}

func (s *Server) allocationRoutes() {
	s.resource("/v1/allocations", resource{list: s.listAllocations, create: s.createAllocation,
		get: s.getAllocation, patch: s.patchAllocation, del: s.deleteAllocation(s.allocationInPath)})
	s.handle("GET /v1/nodes/{ident}/allocation", s.nodeAllocation)
	s.handle("DELETE /v1/nodes/{ident}/allocation", s.deleteAllocation(s.allocationOfNode))
}

func (s *Server) listAllocations(w http.ResponseWriter, r *http.Request) error {
	if err := allocationsAllowed(r); err != nil {
		return err
	}
	return serveList(s, w, r, s.allocationSpec(), false, func(p listParams) ([]*ironwork.Allocation, error) {
		q := r.URL.Query()
		f := sqlstore.AllocationFilter{ResourceClass: q.Get("resource_class"), State: q.Get("state"), Owner: q.Get("owner")}
		if lp := listProject(r.Context()); lp != "" {
			f.Owner = lp
		}
		if node := q.Get("node"); node != "" {
			n, err := s.visibleNode(r.Context(), node)
			if err != nil {
				if ironwork.ErrorCode(err) == ironwork.ENOTFOUND {
					return nil, invalid("%s", ironwork.ErrorMessage(err))
				}
				return nil, err
			}
			f.NodeUUID = n.UUID
		}
		return s.store.ListAllocations(r.Context(), f, p.page)
	})
}

func (s *Server) getAllocation(w http.ResponseWriter, r *http.Request) error {
	if err := allocationsAllowed(r); err != nil {
		return err
	}
	return serveOne(s, w, r, allocationFields(), byIdent(s.store.GetAllocation), s.renderAllocation)
}

func (s *Server) createAllocation(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	if err := allocationsAllowed(r); err != nil {
		return err
	}
	ver := versionOf(ctx)
	c, body, err := s.condBody(r, "allocation")
	if err != nil {
		return err
	}
	nodeIdent, hasNode := body["node"]
	delete(body, "node")
	a := &ironwork.Allocation{}
	if err := allocationFields().apply(a, body, ver, canCreate); err != nil {
		return err
	}
	if a.Name != "" && !validNodeName(a.Name, ver) {
		return invalid("Cannot create allocation with invalid name '%s'", a.Name)
	}
	if err := s.allocationOwner(r.Context(), a); err != nil {
		return err
	}
	var node *ironwork.Node
	if hasNode && nodeIdent != nil {
		ident, ok := nodeIdent.(string)
		if !ok {
			return schemaError("allocation", "%s is not of type 'string', 'null'", pyRepr(nodeIdent))
		}
		if n, err := s.loadNode(r.Context(), ident); err == nil {
			p := PrincipalOf(r.Context())
			if !s.policy.Authorize("baremetal:node:get", p, nodeTarget(n)) {
				return invalid("Node %s could not be found.", ident)
			}
		}
		if ident != "" {
			if ver < vAllocationBackfill {
				return invalid("Cannot set node when creating an allocation in this API version")
			}
			if node, err = s.loadNode(ctx, ident); err != nil {
				if ironwork.ErrorCode(err) == ironwork.ENOTFOUND {
					return invalid("%s", ironwork.ErrorMessage(err))
				}
				return err
			}
		}
	}
	if a.ResourceClass == "" {
		if node == nil {
			return invalid("The resource_class field is mandatory when not backfilling")
		}
		a.ResourceClass = node.ResourceClass
	}
	if len(a.CandidateNodes) > 0 {
		var missing []string
		for i, ident := range a.CandidateNodes {
			n, err := s.store.GetNode(ctx, ident)
			if ironwork.ErrorCode(err) == ironwork.ENOTFOUND {
				missing = append(missing, ident)
				continue
			}
			if err != nil {
				return err
			}
			a.CandidateNodes[i] = n.UUID
		}
		if len(missing) > 0 {
			return invalid("Nodes cannot be found: %s", strings.Join(missing, ", "))
		}
	}
	if a.UUID == "" && node != nil && node.InstanceUUID != "" {
		a.UUID = node.InstanceUUID
	}
	backfill := ""
	if node != nil {
		backfill = node.UUID
	}
	out, err := conductor.Call(ctx, c, conductor.OpCreateAllocation, conductor.CreateAllocationRequest{Allocation: a, BackfillNode: backfill})
	if err != nil {
		return err
	}
	w.Header().Set("Location", s.baseURL(r)+"/v1/allocations/"+out.UUID)
	return s.writeJSON(w, http.StatusCreated, s.renderAllocation(r, out, nil))
}

func (s *Server) patchAllocation(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	if err := allocationsAllowed(r); err != nil {
		return err
	}
	if versionOf(ctx) < vAllocationUpdate {
		return errMethodNotAllowed
	}
	ops, err := readPatch(r)
	if err != nil {
		return err
	}
	for _, op := range ops {
		if root := op.root(); root != "name" && root != "extra" {
			return invalid("Cannot update %s in an allocation. Only the following fields can be updated: extra, name.", root)
		}
	}
	a, err := s.store.UpdateAllocation(ctx, r.PathValue("ident"), func(a *ironwork.Allocation) error {
		if _, err := patchObject(allocationFields(), a, ops, versionOf(ctx)); err != nil {
			return err
		}
		if a.Name != "" && !validNodeName(a.Name, versionOf(ctx)) {
			return invalid("Allocation %s: Cannot change name to invalid name '%s'", a.UUID, a.Name)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.writeJSON(w, http.StatusOK, s.renderAllocation(r, a, nil))
}

// deleteAllocation serves the deletion of the allocation find names in the request.
func (s *Server) deleteAllocation(find func(r *http.Request) (*ironwork.Allocation, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := allocationsAllowed(r); err != nil {
			return err
		}
		c, err := s.cond()
		if err != nil {
			return err
		}
		a, err := find(r)
		if err != nil {
			return err
		}
		if err := conductor.Do(r.Context(), c, conductor.OpDeleteAllocation, conductor.DeleteAllocationRequest{Allocation: a.UUID}); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func (s *Server) allocationInPath(r *http.Request) (*ironwork.Allocation, error) {
	return s.store.GetAllocation(r.Context(), r.PathValue("ident"))
}

// allocationOfNode returns the allocation of the node in the path.
func (s *Server) allocationOfNode(r *http.Request) (*ironwork.Allocation, error) {
	n, err := s.loadNode(r.Context(), r.PathValue("ident"))
	if err != nil {
		return nil, err
	}
	if n.AllocationUUID == "" {
		return nil, ironwork.Errorf(ironwork.ENOTFOUND, "Allocation %s could not be found.", fmt.Sprintf("for node %s", n.UUID))
	}
	return s.store.GetAllocation(r.Context(), n.AllocationUUID)
}

func (s *Server) nodeAllocation(w http.ResponseWriter, r *http.Request) error {
	if err := allocationsAllowed(r); err != nil {
		return err
	}
	return serveOne(s, w, r, allocationFields(), s.allocationOfNode, s.renderAllocation)
}
