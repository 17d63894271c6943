package httpapi

import (
	"net/http"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

func portgroupFields() fieldTable[ironwork.Portgroup] {
	type G = ironwork.Portgroup
	const k = "portgroup"
	return fieldTable[G]{kind: k, fields: []field[G]{
		uuidField[G](k, "uuid", vPortgroups, canCreate, func(g *G) *string { return &g.UUID }),
		{name: "address", since: vPortgroups, access: readWrite, get: func(g *G) any { return optStr(g.Address) },
			set: func(g *G, v any) error {
				if v == nil {
					g.Address = ""
					return nil
				}
				s, ok := v.(string)
				if !ok {
					return schemaError(k, "%s is not of type 'string', 'null'", pyRepr(v))
				}
				mac, err := ironwork.NormalizeMAC("address", s)
				g.Address = mac
				return err
			}},
		strField[G](k, "name", vPortgroups, readWrite, func(g *G) *string { return &g.Name }, 255),
		uuidField[G](k, "node_uuid", vPortgroups, readWrite, func(g *G) *string { return &g.NodeUUID }),
		boolField[G](k, "standalone_ports_supported", vPortgroups, readWrite, func(g *G) *bool { return &g.StandalonePortsSupported }),
		objField[G](k, "internal_info", vPortgroups, readOnly, func(g *G) *ironwork.JSONObject { return &g.InternalInfo }, false),
		objField[G](k, "extra", vPortgroups, readWrite, func(g *G) *ironwork.JSONObject { return &g.Extra }, false),
		timeField[G]("created_at", func(g *G) *time.Time { return &g.CreatedAt }),
		optTimeField[G]("updated_at", 1, func(g *G) **time.Time { return &g.UpdatedAt }),
		{name: "mode", since: vPortgroupMode, access: readWrite, get: func(g *G) any { return optStr(g.Mode) },
			set: func(g *G, v any) error {
				if v == nil {
					return invalid("'mode' is a mandatory attribute and can not be removed")
				}
				s, err := asString(k, v, 255)
				g.Mode = s
				return err
			}},
		objField[G](k, "properties", vPortgroupMode, readWrite, func(g *G) *ironwork.JSONObject { return &g.Properties }, false),
		strField[G](k, "physical_network", 102, readWrite, func(g *G) *string { return &g.PhysicalNetwork }, 64),
		strField[G](k, "category", 103, readWrite, func(g *G) *string { return &g.Category }, 80),
		roField[G]("dynamic_portgroup", vDynamicPortgroup, func(g *G) any { return g.DynamicPortgroup }),
	}}
}

func (s *Server) renderPortgroup(r *http.Request, g *ironwork.Portgroup, fields []string) object {
	out := portgroupFields().render(g, versionOf(r.Context()), fields, nil)
	base := s.baseURL(r)
	out = append(out, kv{"links", links(base, "portgroups/"+g.UUID)})
	if fields == nil && versionOf(r.Context()) >= vPortgroupSubs {
		out = append(out, kv{"ports", links(base, "portgroups/"+g.UUID+"/ports")})
	}
	return out
}

func (s *Server) portgroupSpec() listSpec[ironwork.Portgroup] {
	return listSpec[ironwork.Portgroup]{
		table: portgroupFields(), path: "portgroups", key: "portgroups", defaults: []string{"uuid", "address", "name"},
		sortRefused: []string{"extra", "internal_info", "properties"},
		uuid:        func(g *ironwork.Portgroup) string { return g.UUID },
		render:      s.renderPortgroup,
		filters: map[string]int{"node": vPortgroups, "address": vPortgroups, "fields": vFields,
			"conductor_group": vPortConductorGrp, "shard": vPortgroupShard},
	}
}

// portgroupsAllowed hides the portgroup API below the version that introduced it.
func portgroupsAllowed(r *http.Request, since int) error {
	if versionOf(r.Context()) < since {
		return ironwork.Errorf(ironwork.ENOTFOUND, "The API is not supported for this version")
	}
	return nil
}

func (s *Server) portgroupRoutes() {
	s.resource("/v1/portgroups", resource{list: s.listPortgroups(false, false), detail: s.listPortgroups(true, false),
		create: s.createPortgroup, get: s.getPortgroup, patch: s.patchPortgroup, del: s.deletePortgroup})
	s.handle("GET /v1/portgroups/{ident}/ports", s.portgroupPorts(false))
	s.handle("GET /v1/portgroups/{ident}/ports/detail", s.portgroupPorts(true))
}

func (s *Server) listPortgroups(detailPath, ofNode bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := portgroupsAllowed(r, vPortgroups); err != nil {
			return err
		}
		return serveList(s, w, r, s.portgroupSpec(), detailPath, func(p listParams) ([]*ironwork.Portgroup, error) {
			q := r.URL.Query()
			var f sqlstore.PortgroupFilter
			node := q.Get("node")
			if ofNode {
				node = r.PathValue("ident")
			}
			if node != "" {
				n, err := s.visibleNode(r.Context(), node)
				if err != nil {
					return nil, err
				}
				f.NodeUUID = n.UUID
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
			return s.store.ListPortgroups(r.Context(), f, p.page)
		})
	}
}

func (s *Server) nodePortgroups(detailPath bool) handlerFunc {
	list := s.listPortgroups(detailPath, true)
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := portgroupsAllowed(r, vPortgroupSubs); err != nil {
			return err
		}
		return list(w, r)
	}
}

func (s *Server) portgroupPorts(detailPath bool) handlerFunc {
	list := s.listPorts(detailPath, func(r *http.Request, f *sqlstore.PortFilter) error {
		g, err := s.store.GetPortgroup(r.Context(), r.PathValue("ident"))
		if err != nil {
			return err
		}
		f.PortgroupUUID = g.UUID
		return nil
	})
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := portgroupsAllowed(r, vPortgroupSubs); err != nil {
			return err
		}
		return list(w, r)
	}
}

func (s *Server) getPortgroup(w http.ResponseWriter, r *http.Request) error {
	if err := portgroupsAllowed(r, vPortgroups); err != nil {
		return err
	}
	return serveOne(s, w, r, portgroupFields(), byIdent(s.store.GetPortgroup), s.renderPortgroup)
}

func (s *Server) createPortgroup(w http.ResponseWriter, r *http.Request) error {
	if err := portgroupsAllowed(r, vPortgroups); err != nil {
		return err
	}
	body, err := decodeBody(r, "portgroup")
	if err != nil {
		return err
	}
	if _, ok := body["node_uuid"]; !ok {
		return schemaError("portgroup", "'node_uuid' is a required property")
	}
	g := &ironwork.Portgroup{StandalonePortsSupported: true, Mode: "active-backup"}
	if err := portgroupFields().apply(g, body, versionOf(r.Context()), canCreate); err != nil {
		return err
	}
	if g.Name != "" && !validNodeName(g.Name, versionOf(r.Context())) {
		return invalid("Cannot create portgroup with invalid name '%s'", g.Name)
	}
	if err := s.store.CreatePortgroup(r.Context(), g); err != nil {
		return err
	}
	w.Header().Set("Location", s.baseURL(r)+"/v1/portgroups/"+g.UUID)
	return s.writeJSON(w, http.StatusCreated, s.renderPortgroup(r, g, nil))
}

func (s *Server) patchPortgroup(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	if err := portgroupsAllowed(r, vPortgroups); err != nil {
		return err
	}
	ops, err := readPatch(r)
	if err != nil {
		return err
	}
	cur, err := s.store.GetPortgroup(ctx, r.PathValue("ident"))
	if err != nil {
		return err
	}
	if err := s.checkNodeFree(ctx, cur.NodeUUID); err != nil {
		return err
	}
	g, err := s.store.UpdatePortgroup(ctx, cur.UUID, func(g *ironwork.Portgroup) error {
		if _, err := patchObject(portgroupFields(), g, ops, versionOf(ctx)); err != nil {
			return err
		}
		if g.Name != "" && !validNodeName(g.Name, versionOf(ctx)) {
			return invalid("Portgroup %s: Cannot change name to invalid name '%s'", cur.UUID, g.Name)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.writeJSON(w, http.StatusOK, s.renderPortgroup(r, g, nil))
}

func (s *Server) deletePortgroup(w http.ResponseWriter, r *http.Request) error {
	if err := portgroupsAllowed(r, vPortgroups); err != nil {
		return err
	}
	cur, err := s.store.GetPortgroup(r.Context(), r.PathValue("ident"))
	if err != nil {
		return err
	}
	if err := s.checkNodeFree(r.Context(), cur.NodeUUID); err != nil {
		return err
	}
	return noContent(w, s.store.DeletePortgroup(r.Context(), cur.UUID))
}
