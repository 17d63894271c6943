package httpapi

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// vVolume is the microversion of volume connectors and targets (1.32).
const vVolume = 32

// volumeAllowed answers below 1.32 as Ironic: 404 to every method.
func volumeAllowed(r *http.Request) error {
	if versionOf(r.Context()) >= vVolume {
		return nil
	}
	return ironwork.Errorf(ironwork.ENOTFOUND, "The resource could not be found.")
}

// requiredStr is a string member a volume record must have: null (or a PATCH remove) is
// refused as Ironic's schema refuses a missing required property.
func requiredStr[T any](kind, name string, p func(*T) *string, maxLen int) field[T] {
	return field[T]{name: name, since: vVolume, access: readWrite,
		get: func(v *T) any { return *p(v) },
		set: func(v *T, val any) error {
			if val == nil {
				return schemaError(kind, "'%s' is a required property", name)
			}
			s, ok := val.(string)
			if !ok {
				return schemaError(kind, "%s is not of type 'string'", pyRepr(val))
			}
			if len(s) > maxLen {
				return schemaError(kind, "'%s' is too long", s)
			}
			*p(v) = s
			return nil
		}}
}

// volumeNodeField is node_uuid of a volume record: required, a UUID.
func volumeNodeField[T any](kind string, p func(*T) *string) field[T] {
	f := uuidField[T](kind, "node_uuid", vVolume, readWrite, p)
	set := f.set
	f.set = func(v *T, val any) error {
		if val == nil {
			return schemaError(kind, "'node_uuid' is a required property")
		}
		return set(v, val)
	}
	return f
}

func volumeConnectorFields() fieldTable[ironwork.VolumeConnector] {
	type C = ironwork.VolumeConnector
	const k = "volume_connector"
	return fieldTable[C]{kind: k, fields: []field[C]{
		uuidField[C](k, "uuid", vVolume, canCreate, func(c *C) *string { return &c.UUID }),
		volumeNodeField[C](k, func(c *C) *string { return &c.NodeUUID }),
		requiredStr[C](k, "type", func(c *C) *string { return &c.Type }, 32),
		requiredStr[C](k, "connector_id", func(c *C) *string { return &c.ConnectorID }, 255),
		objField[C](k, "extra", vVolume, readWrite, func(c *C) *ironwork.JSONObject { return &c.Extra }, false),
		timeField[C]("created_at", func(c *C) *time.Time { return &c.CreatedAt }),
		optTimeField[C]("updated_at", vVolume, func(c *C) **time.Time { return &c.UpdatedAt }),
	}}
}

func volumeTargetFields() fieldTable[ironwork.VolumeTarget] {
	type T = ironwork.VolumeTarget
	const k = "volume_target"
	return fieldTable[T]{kind: k, fields: []field[T]{
		uuidField[T](k, "uuid", vVolume, canCreate, func(t *T) *string { return &t.UUID }),
		volumeNodeField[T](k, func(t *T) *string { return &t.NodeUUID }),
		requiredStr[T](k, "volume_type", func(t *T) *string { return &t.VolumeType }, 64),
		objField[T](k, "properties", vVolume, readWrite, func(t *T) *ironwork.JSONObject { return &t.Properties }, true),
		{name: "boot_index", since: vVolume, access: readWrite, get: func(t *T) any { return t.BootIndex },
			set: func(t *T, val any) error {
				n, ok := jsonInt(val)
				if val == nil {
					return schemaError(k, "'boot_index' is a required property")
				}
				if !ok {
					return schemaError(k, "%s is not of type 'integer'", pyRepr(val))
				}
				t.BootIndex = n
				return nil
			}},
		requiredStr[T](k, "volume_id", func(t *T) *string { return &t.VolumeID }, 36),
		objField[T](k, "extra", vVolume, readWrite, func(t *T) *ironwork.JSONObject { return &t.Extra }, false),
		timeField[T]("created_at", func(t *T) *time.Time { return &t.CreatedAt }),
		optTimeField[T]("updated_at", vVolume, func(t *T) **time.Time { return &t.UpdatedAt }),
	}}
}

// jsonInt reads a JSON integer that fits a 32-bit column.
func jsonInt(v any) (int, bool) {
	var f float64
	switch x := v.(type) {
	case json.Number:
		n, err := x.Int64()
		if err != nil || n < math.MinInt32 || n > math.MaxInt32 {
			return 0, false
		}
		return int(n), true
	case float64:
		f = x
	case int:
		return x, true
	default:
		return 0, false
	}
	if f != math.Trunc(f) || f < math.MinInt32 || f > math.MaxInt32 {
		return 0, false
	}
	return int(f), true
}

func (s *Server) volumeRoutes() {
	s.handle("GET /v1/volume", s.volumeRoot(""))
	s.handle("GET /v1/volume/{$}", s.volumeRoot(""))
	s.handle("GET /v1/nodes/{node}/volume", s.volumeRoot("node"))
	s.handle("GET /v1/nodes/{node}/volume/{$}", s.volumeRoot("node"))

	c := volumeKind[ironwork.VolumeConnector]{
		path: "volume/connectors", key: "connectors", kind: "volume connector",
		defaults: []string{"uuid", "node_uuid", "type", "connector_id"},
		table:    volumeConnectorFields(),
		uuid:     func(c *ironwork.VolumeConnector) string { return c.UUID },
		nodeUUID: func(c *ironwork.VolumeConnector) *string { return &c.NodeUUID },
		list:     s.store.ListVolumeConnectors, get: s.store.GetVolumeConnector,
		create: s.store.CreateVolumeConnector, update: s.store.UpdateVolumeConnector,
		del: s.store.DeleteVolumeConnector,
	}
	t := volumeKind[ironwork.VolumeTarget]{
		path: "volume/targets", key: "targets", kind: "volume target",
		defaults: []string{"uuid", "node_uuid", "volume_type", "boot_index", "volume_id"},
		table:    volumeTargetFields(),
		uuid:     func(t *ironwork.VolumeTarget) string { return t.UUID },
		nodeUUID: func(t *ironwork.VolumeTarget) *string { return &t.NodeUUID },
		list:     s.store.ListVolumeTargets, get: s.store.GetVolumeTarget,
		create: s.store.CreateVolumeTarget, update: s.store.UpdateVolumeTarget,
		del: s.store.DeleteVolumeTarget,
	}
	registerVolume(s, c)
	registerVolume(s, t)
}

// volumeRoot serves GET /v1/volume and /v1/nodes/{node}/volume: links to the connectors and
// targets (of the node).
func (s *Server) volumeRoot(parent string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := volumeAllowed(r); err != nil {
			return err
		}
		prefix := "volume"
		if parent != "" {
			n, err := s.loadNode(r.Context(), r.PathValue("node"))
			if err != nil {
				return err
			}
			prefix = "nodes/" + n.UUID + "/volume"
		}
		base := s.baseURL(r)
		return s.writeJSON(w, http.StatusOK, object{
			{"links", links(base, prefix)},
			{"connectors", links(base, prefix+"/connectors")},
			{"targets", links(base, prefix+"/targets")},
		})
	}
}

// volumeKind is what the connector and target handlers share.
type volumeKind[T any] struct {
	path, key, kind string
	defaults        []string
	table           fieldTable[T]
	uuid            func(*T) string
	nodeUUID        func(*T) *string
	list            func(context.Context, sqlstore.VolumeFilter, sqlstore.Page) ([]*T, error)
	get             func(context.Context, string) (*T, error)
	create          func(context.Context, *T) error
	update          func(context.Context, string, func(*T) error) (*T, error)
	del             func(context.Context, string) error
}

func registerVolume[T any](s *Server, k volumeKind[T]) {
	base := "/v1/" + k.path
	s.handle("GET "+base, volumeList(s, k, false, false))
	s.handle("GET "+base+"/detail", volumeList(s, k, true, false))
	s.handle("GET /v1/nodes/{node}/"+k.path, volumeList(s, k, false, true))
	s.handle("GET /v1/nodes/{node}/"+k.path+"/detail", volumeList(s, k, true, true))
	s.handle("POST "+base, volumeCreate(s, k))
	s.handle("GET "+base+"/{ident}", volumeGet(s, k))
	s.handle("PATCH "+base+"/{ident}", volumePatch(s, k))
	s.handle("DELETE "+base+"/{ident}", volumeDelete(s, k))
}

func volumeRender[T any](s *Server, k volumeKind[T]) func(r *http.Request, v *T, fields []string) object {
	return func(r *http.Request, v *T, fields []string) object {
		out := k.table.render(v, versionOf(r.Context()), fields, nil)
		return append(out, kv{"links", links(s.baseURL(r), k.path+"/"+k.uuid(v))})
	}
}

func volumeList[T any](s *Server, k volumeKind[T], detailPath, underNode bool) handlerFunc {
	spec := listSpec[T]{
		table: k.table, path: k.path, key: k.key, defaults: k.defaults,
		sortRefused: []string{"extra", "properties"},
		uuid:        k.uuid, render: volumeRender(s, k),
		filters: map[string]int{"node": vVolume, "fields": vVolume},
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := volumeAllowed(r); err != nil {
			return err
		}
		return serveList(s, w, r, spec, detailPath, func(p listParams) ([]*T, error) {
			f := sqlstore.VolumeFilter{Project: listProject(r.Context())}
			ident := r.URL.Query().Get("node")
			if underNode {
				if ident != "" {
					return nil, invalid("The node parameter can not be used when listing %ss of a node.", k.kind)
				}
				ident = r.PathValue("node")
			}
			if ident != "" {
				n, err := s.visibleNode(r.Context(), ident) // another project's node is not found
				if err != nil {
					return nil, err
				}
				f.NodeUUID = n.UUID
			}
			return k.list(r.Context(), f, p.page)
		})
	}
}

// volumeIdent checks the {ident} of a volume record: a UUID, as Ironic's.
func volumeIdent(r *http.Request) (string, error) {
	id := r.PathValue("ident")
	if !ironwork.IsUUID(id) {
		return "", invalid("Expected a UUID but received %s.", id)
	}
	return canonicalUUID(id), nil
}

func volumeGet[T any](s *Server, k volumeKind[T]) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := volumeAllowed(r); err != nil {
			return err
		}
		return serveOne(s, w, r, k.table, func(r *http.Request) (*T, error) {
			id, err := volumeIdent(r)
			if err != nil {
				return nil, err
			}
			return k.get(r.Context(), id)
		}, volumeRender(s, k))
	}
}

func volumeCreate[T any](s *Server, k volumeKind[T]) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := volumeAllowed(r); err != nil {
			return err
		}
		body, err := decodeBody(r, k.table.kind)
		if err != nil {
			return err
		}
		for _, f := range k.table.fields {
			if f.access&canPatch != 0 && f.name != "extra" && f.name != "properties" {
				if _, ok := body[f.name]; !ok {
					return schemaError(k.table.kind, "'%s' is a required property", f.name)
				}
			}
		}
		v := new(T)
		if err := k.table.apply(v, body, versionOf(r.Context()), canCreate); err != nil {
			return err
		}
		node := *k.nodeUUID(v)
		if _, err := s.store.GetNode(r.Context(), node); err != nil {
			return invalid("Invalid input for field/attribute node_uuid. Value: '%s'. ", node)
		}
		if err := k.create(r.Context(), v); err != nil {
			return err
		}
		v, err = k.get(r.Context(), k.uuid(v))
		if err != nil {
			return err
		}
		w.Header().Set("Location", s.baseURL(r)+"/v1/"+k.path+"/"+k.uuid(v))
		return s.writeJSON(w, http.StatusCreated, volumeRender(s, k)(r, v, nil))
	}
}

// volumeNodeReady applies the conductor's rules for changing a node's volume records: the
// node is not locked, and is powered off (for deletion, or in a state where it may be deleted).
func (s *Server) volumeNodeReady(ctx context.Context, nodeUUID, action string, deleting bool) error {
	n, err := s.store.GetNode(ctx, nodeUUID)
	if err != nil {
		return err
	}
	if n.Reservation != "" {
		return lockedError(n)
	}
	if n.PowerState == ironwork.PowerOff || (deleting && ironwork.CanDelete(n.ProvisionState, false)) {
		return nil
	}
	return invalid("The requested action \"%s\" can not be performed on node \"%s\" while it is in state \"%s\".",
		action, n.UUID, n.PowerState)
}

func volumePatch[T any](s *Server, k volumeKind[T]) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := volumeAllowed(r); err != nil {
			return err
		}
		ctx := r.Context()
		id, err := volumeIdent(r)
		if err != nil {
			return err
		}
		ops, err := readPatch(r)
		if err != nil {
			return err
		}
		cur, err := k.get(ctx, id)
		if err != nil {
			return err
		}
		was := *k.nodeUUID(cur)
		if _, err := patchObject(k.table, cur, ops, versionOf(ctx)); err != nil {
			return err
		}
		if now := *k.nodeUUID(cur); now != was {
			if _, err := s.store.GetNode(ctx, now); err != nil {
				return invalid("Invalid input for field/attribute node_uuid. Value: '%s'. ", now)
			}
		}
		if err := s.volumeNodeReady(ctx, was, k.kind+" update", false); err != nil {
			return err
		}
		v, err := k.update(ctx, id, func(v *T) error {
			_, err := patchObject(k.table, v, ops, versionOf(ctx))
			return err
		})
		if err != nil {
			return err
		}
		if v, err = k.get(ctx, k.uuid(v)); err != nil {
			return err
		}
		return s.writeJSON(w, http.StatusOK, volumeRender(s, k)(r, v, nil))
	}
}

func volumeDelete[T any](s *Server, k volumeKind[T]) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := volumeAllowed(r); err != nil {
			return err
		}
		ctx := r.Context()
		id, err := volumeIdent(r)
		if err != nil {
			return err
		}
		cur, err := k.get(ctx, id)
		if err != nil {
			return err
		}
		if err := s.volumeNodeReady(ctx, *k.nodeUUID(cur), k.kind+" deletion", true); err != nil {
			return err
		}
		return noContent(w, k.del(ctx, id))
	}
}
