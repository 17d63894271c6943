package httpapi

import (
	"net/http"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// vRAID is the microversion of the RAID API: target_raid_config, raid_config and the
// logical disk properties.
const vRAID = 12

// raid is PUT /v1/nodes/{ident}/states/raid: the body is the target RAID configuration, checked
// by the conductor against Ironic's schema and the node's raid interface ({} clears it).
func (s *Server) raid(w http.ResponseWriter, r *http.Request) error {
	if versionOf(r.Context()) < vRAID {
		return ironwork.Errorf(ironwork.ENOTFOUND, "The resource could not be found.")
	}
	c, body, err := s.condBody(r, "body")
	if err != nil {
		return err
	}
	uuid, err := s.nodeIdent(r)
	if err != nil {
		return err
	}
	req := conductor.SetTargetRAIDRequest{NodeRef: conductor.NodeRef{Node: uuid}, Config: normalizeJSON(body)}
	return noContent(w, conductor.Do(r.Context(), c, conductor.OpSetTargetRAID, req))
}

// raidLogicalDiskProperties is GET /v1/drivers/{name}/raid/logical_disk_properties: the
// properties a logical disk of target_raid_config may have, which Ironic reads from its one
// RAID schema whatever the driver's raid interface.
func (s *Server) raidLogicalDiskProperties(w http.ResponseWriter, r *http.Request) error {
	if versionOf(r.Context()) < vRAID {
		return notAcceptable("Request not acceptable.")
	}
	if _, _, err := s.lookupDriver(r); err != nil {
		return err
	}
	return s.writeJSON(w, http.StatusOK, ironwork.RAIDLogicalDiskProperties())
}
