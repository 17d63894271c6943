package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"regexp"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// vVIFPort is the microversion from which a VIF may name its port or portgroup (1.67); Ironic
// reads port_uuid and portgroup_uuid at any version but refuses both together only from it.
const vVIFPort = 67

// logicalName is RFC 3986's unreserved characters, Ironic's logical names.
var logicalName = regexp.MustCompile(`^[A-Za-z0-9._~-]+$`)

// uuidOrName checks a value the way Ironic's uuid_or_name argument validator does.
func uuidOrName(name, v string) error {
	if ironwork.IsUUID(v) || (len(v) <= 255 && logicalName.MatchString(v)) {
		return nil
	}
	return invalid("Expected UUID or name for %s: %s", name, v)
}

func (s *Server) vifRoutes() {
	s.handle("GET /v1/nodes/{ident}/vifs", s.listVIFs)
	s.handle("POST /v1/nodes/{ident}/vifs", s.attachVIF)
	s.handle("DELETE /v1/nodes/{ident}/vifs/{vif}", s.detachVIF)
}

// vifsAllowed answers 404 below 1.28, where nodes have no vifs resource.
func vifsAllowed(r *http.Request) error {
	if versionOf(r.Context()) < vVIFs {
		return ironwork.Errorf(ironwork.ENOTFOUND, "The resource could not be found.")
	}
	return nil
}

func (s *Server) listVIFs(w http.ResponseWriter, r *http.Request) error {
	if err := vifsAllowed(r); err != nil {
		return err
	}
	vifs, err := callNode(s, r, conductor.OpListVIFs)
	if err != nil {
		return err
	}
	out := make([]object, len(vifs))
	for i, v := range vifs {
		out[i] = object{{"id", v.ID}}
	}
	return s.writeJSON(w, http.StatusOK, object{{"vifs", out}})
}

func (s *Server) attachVIF(w http.ResponseWriter, r *http.Request) error {
	if err := vifsAllowed(r); err != nil {
		return err
	}
	c, body, err := s.condBody(r, "vif")
	if err != nil {
		return err
	}
	raw, ok := body["id"]
	if !ok {
		return schemaError("vif", "'id' is a required property")
	}
	id, ok := raw.(string)
	if !ok {
		return schemaError("vif", "%s is not of type 'string'", pyRepr(raw))
	}
	if err := uuidOrName("id", id); err != nil {
		return err
	}
	vif := conductor.VIF{ID: id}
	_, hasPort := body["port_uuid"]
	_, hasGroup := body["portgroup_uuid"]
	if hasPort && hasGroup && versionOf(r.Context()) >= vVIFPort {
		return invalid("Cannot specify both port_uuid and portgroup_uuid")
	}
	// Other members are allowed and ignored, as in Ironic; port_uuid wins over portgroup_uuid.
	if hasPort {
		vif.PortUUID = fmt.Sprint(body["port_uuid"])
	} else if hasGroup {
		vif.PortgroupUUID = fmt.Sprint(body["portgroup_uuid"])
	}
	return doOnNode(s, w, r, c, conductor.OpAttachVIF, func(ref conductor.NodeRef) conductor.AttachVIFRequest {
		return conductor.AttachVIFRequest{NodeRef: ref, VIF: vif}
	})
}

func (s *Server) detachVIF(w http.ResponseWriter, r *http.Request) error {
	if err := vifsAllowed(r); err != nil {
		return err
	}
	c, uuid, err := s.condNode(r)
	if err != nil {
		return err
	}
	id := r.PathValue("vif")
	if err := uuidOrName("vif_id", id); err != nil {
		return err
	}
	return noContent(w, conductor.Do(r.Context(), c, conductor.OpDetachVIF, conductor.DetachVIFRequest{NodeRef: conductor.NodeRef{Node: uuid}, VIF: id}))
}

// vifKeys are the internal_info keys through which a port is bound to a VIF, in the order
// Ironic's get_current_vif reads them.
var vifKeys = []string{"cleaning_vif_port_id", "provisioning_vif_port_id", "rescuing_vif_port_id",
	"inspection_vif_port_id", "servicing_vif_port_id", "tenant_vif_port_id"}

// portWithoutVIF returns the check that refuses to delete a port bound to a VIF, as Ironic's
// conductor does unless the node is in maintenance or its network interface is noop (which
// reports no VIF).
func (s *Server) portWithoutVIF(ctx context.Context, nodeUUID string) func(*ironwork.Port) error {
	return func(p *ironwork.Port) error {
		n, err := s.store.GetNode(ctx, nodeUUID)
		if err != nil {
			return err
		}
		if n.Maintenance || n.Interfaces[ironwork.NetworkInterface] == "noop" {
			return nil
		}
		for _, k := range vifKeys {
			if vif, ok := p.InternalInfo[k].(string); ok && vif != "" {
				return ironwork.Errorf(ironwork.ECONFLICT, "Cannot delete the port %s as it is bound to VIF %s for use.", p.UUID, vif)
			}
		}
		return nil
	}
}
