package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

func portFields() fieldTable[ironwork.Port] {
	type P = ironwork.Port
	const k = "port"
	return fieldTable[P]{kind: k, fields: []field[P]{
		uuidField[P](k, "uuid", 1, canCreate, func(p *P) *string { return &p.UUID }),
		{name: "address", since: 1, access: readWrite, get: func(p *P) any { return p.Address },
			set: func(p *P, v any) error {
				s, ok := v.(string)
				if !ok {
					return schemaError(k, "%s is not of type 'string'", pyRepr(v))
				}
				mac, err := ironwork.NormalizeMAC("address", s)
				p.Address = mac
				return err
			}},
		uuidField[P](k, "node_uuid", 1, readWrite, func(p *P) *string { return &p.NodeUUID }),
		objField[P](k, "extra", 1, readWrite, func(p *P) *ironwork.JSONObject { return &p.Extra }, false),
		timeField[P]("created_at", func(p *P) *time.Time { return &p.CreatedAt }),
		optTimeField[P]("updated_at", 1, func(p *P) **time.Time { return &p.UpdatedAt }),
		objField[P](k, "internal_info", 18, readOnly, func(p *P) *ironwork.JSONObject { return &p.InternalInfo }, false),
		boolField[P](k, "pxe_enabled", 19, readWrite, func(p *P) *bool { return &p.PXEEnabled }),
		objField[P](k, "local_link_connection", 19, readWrite, func(p *P) *ironwork.JSONObject { return &p.LocalLinkConnection }, false),
		uuidField[P](k, "portgroup_uuid", vPortgroupSubs, readWrite, func(p *P) *string { return &p.PortgroupUUID }),
		{name: "physical_network", since: 34, access: readWrite, get: func(p *P) any { return optStr(p.PhysicalNetwork) },
			set: func(p *P, v any) error {
				s, err := asString(k, v, 64)
				if err == nil && v != nil && s == "" {
					err = invalid("A non-empty value is required when setting physical_network")
				}
				p.PhysicalNetwork = s
				return err
			}},
		boolField[P](k, "is_smartnic", 53, readWrite, func(p *P) *bool { return &p.IsSmartNIC }),
		strField[P](k, "name", 88, readWrite, func(p *P) *string { return &p.Name }, 255),
		strField[P](k, "description", 97, readWrite, func(p *P) *string { return &p.Description }, 255),
		strField[P](k, "vendor", 100, readWrite, func(p *P) *string { return &p.Vendor }, 32),
		strField[P](k, "category", 101, readWrite, func(p *P) *string { return &p.Category }, 80),
		{name: "available_for_dynamic_portgroup", since: vDynamicPortgroup, access: readWrite,
			get: func(p *P) any { return !p.NotForDynamicPortgroup },
			// null (or a PATCH remove) restores the default, true.
			set: setBool(k, func(p *P, b *bool) { p.NotForDynamicPortgroup = b != nil && !*b })},
	}}
}

func (s *Server) portSpec() listSpec[ironwork.Port] {
	return listSpec[ironwork.Port]{
		table: portFields(), path: "ports", key: "ports", defaults: []string{"uuid", "address"},
		sortRefused: []string{"extra", "internal_info", "local_link_connection"},
		uuid:        func(p *ironwork.Port) string { return p.UUID },
		render:      s.renderPort,
		filters: map[string]int{"node": 1, "node_uuid": 1, "address": 1, "portgroup": vPortgroupSubs,
			"shard": vShards, "fields": vFields, "conductor_group": vPortConductorGrp},
	}
}

func (s *Server) renderPort(r *http.Request, p *ironwork.Port, fields []string) object {
	out := portFields().render(p, versionOf(r.Context()), fields, nil)
	return append(out, kv{"links", links(s.baseURL(r), "ports/"+p.UUID)})
}

func (s *Server) portRoutes() {
	s.resource("/v1/ports", resource{list: s.listPorts(false, nil), detail: s.listPorts(true, nil), create: s.createPort,
		get: s.getPort, patch: s.patchPort, del: s.deletePort})
}

// listPorts serves a port list; parent, when set, restricts it (node or portgroup sub-lists).
func (s *Server) listPorts(detailPath bool, parent func(r *http.Request, f *sqlstore.PortFilter) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		return serveList(s, w, r, s.portSpec(), detailPath, func(p listParams) ([]*ironwork.Port, error) {
			q := r.URL.Query()
			var f sqlstore.PortFilter
			if parent != nil {
				if err := parent(r, &f); err != nil {
					return nil, err
				}
			}
			if v := q.Get("node_uuid"); v != "" {
				f.NodeUUID = v
			} else if v := q.Get("node"); v != "" {
				n, err := s.visibleNode(r.Context(), v)
				if err != nil {
					return nil, err
				}
				f.NodeUUID = n.UUID
			}
			if v := q.Get("portgroup"); v != "" {
				g, err := s.store.GetPortgroup(r.Context(), v)
				if err != nil {
					return nil, err
				}
				f.PortgroupUUID = g.UUID
			}
			if v := q.Get("address"); v != "" {
				mac, err := ironwork.NormalizeMAC("address", v)
				if err != nil {
					return nil, err
				}
				f.Address = mac
			}
			f.Shards, f.ConductorGroup = shardAndGroup(q)
			f.Project = listProject(r.Context())
			return s.store.ListPorts(r.Context(), f, p.page)
		})
	}
}

func (s *Server) nodePorts(detailPath bool) handlerFunc {
	return s.listPorts(detailPath, func(r *http.Request, f *sqlstore.PortFilter) error {
		n, err := s.loadNode(r.Context(), r.PathValue("ident"))
		if err != nil {
			return err
		}
		f.NodeUUID = n.UUID
		return nil
	})
}

func (s *Server) getPort(w http.ResponseWriter, r *http.Request) error {
	return serveOne(s, w, r, portFields(), byIdent(s.store.GetPort), s.renderPort)
}

func (s *Server) createPort(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	ver := versionOf(ctx)
	body, err := decodeBody(r, "port")
	if err != nil {
		return err
	}
	if _, ok := body["address"]; !ok {
		return schemaError("port", "'address' is a required property")
	}
	nodeIdent, hasIdent := body["node_ident"]
	delete(body, "node_ident")
	_, hasUUID := body["node_uuid"]
	if hasIdent && ver < vPortNodeIdent {
		return tooNew(vPortNodeIdent)
	}
	if hasIdent == hasUUID {
		return schemaError("port", "exactly one of 'node_uuid' or 'node_ident' is required")
	}
	p := &ironwork.Port{PXEEnabled: true}
	if err := portFields().apply(p, body, ver, canCreate); err != nil {
		return err
	}
	if hasIdent {
		ident, _ := nodeIdent.(string)
		n, err := s.store.GetNode(ctx, ident)
		if err != nil {
			return invalid("Node %s could not be found.", ident)
		}
		p.NodeUUID = n.UUID
	}
	if err := s.checkPort(ctx, p); err != nil {
		return err
	}
	if err := s.store.CreatePort(ctx, p); err != nil {
		return err
	}
	p, err = s.store.GetPort(ctx, p.UUID)
	if err != nil {
		return err
	}
	w.Header().Set("Location", s.baseURL(r)+"/v1/ports/"+p.UUID)
	return s.writeJSON(w, http.StatusCreated, s.renderPort(r, p, nil))
}

// checkPort applies Ironic's cross-field rules for ports.
func (s *Server) checkPort(ctx context.Context, p *ironwork.Port) error {
	// OVN VTEP switch keys were accepted from 1.90 and refused again from 1.105, as Ironic.
	if ver := versionOf(ctx); ver < vOVNVTEP || ver >= vOVNVTEPRemoved {
		for _, key := range []string{"vtep-logical-switch", "vtep-physical-switch"} {
			if _, ok := p.LocalLinkConnection[key]; ok {
				return schemaError("local_link_connection", "Additional properties are not allowed ('%s' was unexpected)", key)
			}
		}
	}
	if p.IsSmartNIC {
		if p.LocalLinkConnection["port_id"] == nil || p.LocalLinkConnection["hostname"] == nil {
			return invalid("Smart NIC port must have port_id and hostname in local_link_connection")
		}
	}
	if sw, ok := p.LocalLinkConnection["switch_id"].(string); ok && sw != "" {
		if _, err := ironwork.NormalizeMAC("switch_id", sw); err != nil && !datapathRE.MatchString(sw) {
			return invalid("Expected a MAC address or OpenFlow datapath ID but received %s.", sw)
		}
	}
	if p.PortgroupUUID != "" && p.PXEEnabled {
		g, err := s.store.GetPortgroup(ctx, p.PortgroupUUID)
		if err != nil {
			return invalid("Portgroup %s could not be found.", p.PortgroupUUID)
		}
		if !g.StandalonePortsSupported {
			return ironwork.Errorf(ironwork.ECONFLICT, "Port group %s doesn't support standalone ports. This port cannot be created as a member of that portgroup as the port's 'pxe_enabled' field was set to True.", g.UUID)
		}
	}
	return nil
}

func (s *Server) patchPort(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	ops, err := readPatch(r)
	if err != nil {
		return err
	}
	// Check the patched port before the write transaction, which must not wait on other reads.
	cur, err := s.store.GetPort(ctx, r.PathValue("ident"))
	if err != nil {
		return err
	}
	if err := s.checkNodeFree(ctx, cur.NodeUUID); err != nil {
		return err
	}
	if _, err := patchObject(portFields(), cur, ops, versionOf(ctx)); err != nil {
		return err
	}
	if err := s.checkPort(ctx, cur); err != nil {
		return err
	}
	p, err := s.store.UpdatePort(ctx, cur.UUID, func(p *ironwork.Port) error {
		_, err := patchObject(portFields(), p, ops, versionOf(ctx))
		return err
	})
	if err != nil {
		return err
	}
	p, err = s.store.GetPort(ctx, p.UUID)
	if err != nil {
		return err
	}
	return s.writeJSON(w, http.StatusOK, s.renderPort(r, p, nil))
}

// checkNodeFree refuses changes under a node that a conductor holds or that is inspecting.
func (s *Server) checkNodeFree(ctx context.Context, nodeUUID string) error {
	n, err := s.store.GetNode(ctx, nodeUUID)
	if err != nil {
		return err
	}
	if n.Reservation != "" {
		return lockedError(n)
	}
	if n.ProvisionState == ironwork.Inspecting {
		return ironwork.Errorf(ironwork.ECONFLICT, "Cannot update node \"%s\" while it is in state \"inspecting\".", n.UUID)
	}
	return nil
}

func (s *Server) deletePort(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	ident := r.PathValue("ident")
	if !ironwork.IsUUID(ident) {
		return invalid("Expected UUID for port_uuid: %s", ident)
	}
	cur, err := s.store.GetPort(ctx, ident)
	if err != nil {
		return err
	}
	if err := s.checkNodeFree(ctx, cur.NodeUUID); err != nil {
		return err
	}
	return noContent(w, s.store.DeletePort(ctx, ident, s.portWithoutVIF(ctx, cur.NodeUUID)))
}

var datapathRE = regexp.MustCompile(`^(0x)?[0-9a-fA-F]{16}$`)

// readPatch reads a JSON PATCH request body.
func readPatch(r *http.Request) ([]patchOp, error) {
	raw, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if _, err := decodeChecked(raw); err != nil {
		return nil, err
	}
	return decodePatch(raw)
}

// shardAndGroup reads the shard and conductor_group filters of port and portgroup lists.
func shardAndGroup(q url.Values) ([]string, *string) {
	var shards []string
	if v := q.Get("shard"); v != "" {
		shards = splitList(v)
	}
	if _, ok := q["conductor_group"]; !ok {
		return shards, nil
	}
	g := q.Get("conductor_group")
	return shards, &g
}

// splitList splits a comma-separated query value, lower-cased and de-duplicated.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.ToLower(strings.TrimSpace(s)); s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
