package httpapi

import (
	"net/http"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

func chassisFields() fieldTable[ironwork.Chassis] {
	type C = ironwork.Chassis
	const k = "chassis"
	return fieldTable[C]{kind: k, fields: []field[C]{
		uuidField[C](k, "uuid", 1, canCreate, func(c *C) *string { return &c.UUID }),
		strField[C](k, "description", 1, readWrite, func(c *C) *string { return &c.Description }, 255),
		objField[C](k, "extra", 1, readWrite, func(c *C) *ironwork.JSONObject { return &c.Extra }, false),
		timeField[C]("created_at", func(c *C) *time.Time { return &c.CreatedAt }),
		optTimeField[C]("updated_at", 1, func(c *C) **time.Time { return &c.UpdatedAt }),
	}}
}

func (s *Server) renderChassis(r *http.Request, c *ironwork.Chassis, fields []string) object {
	out := chassisFields().render(c, versionOf(r.Context()), fields, nil)
	base := s.baseURL(r)
	out = append(out, kv{"links", links(base, "chassis/"+c.UUID)})
	if fields == nil {
		// Ironic nests the nodes links one list deeper than other resources; clients expect it.
		out = append(out, kv{"nodes", [][]link{links(base, "chassis/"+c.UUID+"/nodes")}})
	}
	return out
}

func (s *Server) chassisRoutes() {
	spec := listSpec[ironwork.Chassis]{
		table: chassisFields(), path: "chassis", key: "chassis", defaults: []string{"uuid", "description"},
		sortRefused: []string{"extra"}, uuid: func(c *ironwork.Chassis) string { return c.UUID },
		render: s.renderChassis, filters: map[string]int{"fields": vFields},
	}
	list := func(detail bool) handlerFunc {
		return func(w http.ResponseWriter, r *http.Request) error {
			return serveList(s, w, r, spec, detail, func(p listParams) ([]*ironwork.Chassis, error) {
				return s.store.ListChassis(r.Context(), p.page)
			})
		}
	}
	s.resource("/v1/chassis", resource{list: list(false), detail: list(true), create: s.createChassis,
		get: s.getChassis, patch: s.patchChassis, del: s.deleteChassis})
	nodes := func(detail bool) handlerFunc {
		return func(w http.ResponseWriter, r *http.Request) error {
			c, err := s.chassisByUUID(r)
			if err != nil {
				return err
			}
			return s.writeNodeList(w, r, detail, func(f *sqlstore.NodeFilter) { f.ChassisUUID = c.UUID })
		}
	}
	s.handle("GET /v1/chassis/{ident}/nodes", nodes(false))
	s.handle("GET /v1/chassis/{ident}/nodes/detail", nodes(true))
}

func (s *Server) chassisByUUID(r *http.Request) (*ironwork.Chassis, error) {
	ident := r.PathValue("ident")
	if !ironwork.IsUUID(ident) {
		return nil, invalid("Expected UUID for chassis_uuid: %s", ident)
	}
	return s.store.GetChassis(r.Context(), ident)
}

func (s *Server) getChassis(w http.ResponseWriter, r *http.Request) error {
	return serveOne(s, w, r, chassisFields(), s.chassisByUUID, s.renderChassis)
}

func (s *Server) createChassis(w http.ResponseWriter, r *http.Request) error {
	body, err := decodeBody(r, "chassis")
	if err != nil {
		return err
	}
	c := &ironwork.Chassis{}
	if err := chassisFields().apply(c, body, versionOf(r.Context()), canCreate); err != nil {
		return err
	}
	if err := s.store.CreateChassis(r.Context(), c); err != nil {
		return err
	}
	w.Header().Set("Location", s.baseURL(r)+"/v1/chassis/"+c.UUID)
	return s.writeJSON(w, http.StatusCreated, s.renderChassis(r, c, nil))
}

func (s *Server) patchChassis(w http.ResponseWriter, r *http.Request) error {
	ops, err := readPatch(r)
	if err != nil {
		return err
	}
	cur, err := s.chassisByUUID(r)
	if err != nil {
		return err
	}
	c, err := s.store.UpdateChassis(r.Context(), cur.UUID, func(c *ironwork.Chassis) error {
		_, err := patchObject(chassisFields(), c, ops, versionOf(r.Context()))
		return err
	})
	if err != nil {
		return err
	}
	return s.writeJSON(w, http.StatusOK, s.renderChassis(r, c, nil))
}

func (s *Server) deleteChassis(w http.ResponseWriter, r *http.Request) error {
	cur, err := s.chassisByUUID(r)
	if err != nil {
		return err
	}
	return noContent(w, s.store.DeleteChassis(r.Context(), cur.UUID))
}
