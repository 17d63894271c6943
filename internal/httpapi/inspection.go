package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// Inspection endpoints: the agent's POST /v1/continue_inspection (1.84, public as lookup and
// heartbeat) and the node's stored inventory, GET /v1/nodes/{ident}/inventory (1.81).

const (
	vInventory          = 81
	vContinueInspection = 84
)

func (s *Server) inspectionRoutes() {
	s.handle("POST /v1/continue_inspection", s.continueInspection)
	s.handle("GET /v1/nodes/{ident}/inventory", s.nodeInventory)
}

// continueInspection takes an agent's inventory: the body's "inventory" and, as plugin data,
// every other key. The node is the one named by node_uuid, else the one with a port of one of
// the inventory's MAC addresses, else the one whose driver_info has its BMC address; with no
// such node, discovery (when on) enrols one. The node's conductor checks that the node waits
// for an inventory: any other node is not found, as in Ironic, and nothing changes.
func (s *Server) continueInspection(w http.ResponseWriter, r *http.Request) error {
	if versionOf(r.Context()) < vContinueInspection {
		return ironwork.Errorf(ironwork.ENOTFOUND, "The resource could not be found.")
	}
	c, body, err := s.condBody(r, "inspection data")
	if err != nil {
		return err
	}
	rawInv, err := json.Marshal(body["inventory"])
	if err != nil {
		return invalid("Invalid inventory: %s", err)
	}
	delete(body, "inventory")
	plugin, err := json.Marshal(body)
	if err != nil {
		return invalid("Invalid plugin data: %s", err)
	}
	inv, err := conductor.ParseInventory(rawInv)
	if err != nil {
		return err
	}
	macs, bmcs := conductor.InventoryMACs(inv), conductor.BMCAddresses(inv)
	var n *ironwork.Node
	if uuid := r.URL.Query().Get("node_uuid"); uuid != "" {
		n, err = s.store.GetNode(r.Context(), uuid)
		if err != nil {
			return ironwork.Errorf(ironwork.ENOTFOUND, "Node could not be found.")
		}
	} else if n, err = s.store.NodeByPortAddress(r.Context(), macs); err != nil {
		n, err = conductor.NodeByBMCAddress(r.Context(), s.store, bmcs)
	}
	var res conductor.InspectionResult
	switch {
	case err == nil:
		res, err = conductor.Call(r.Context(), c, conductor.OpContinueInspection, conductor.ContinueInspectionRequest{
			NodeRef: conductor.NodeRef{Node: n.UUID}, Inventory: rawInv, PluginData: plugin})
	case ironwork.ErrorCode(err) == ironwork.ENOTFOUND:
		res, err = conductor.Call(r.Context(), c, conductor.OpDiscover, conductor.DiscoverRequest{Inventory: rawInv, PluginData: plugin})
	}
	if err != nil {
		return err
	}
	s.log.Info("inventory received", "node", res.UUID, "addresses", strings.Join(macs, ","), "bmc", strings.Join(bmcs, ","))
	return s.writeJSON(w, http.StatusAccepted, map[string]any{"uuid": res.UUID})
}

// nodeInventory shows the inventory and plugin data of a node's last inspection.
func (s *Server) nodeInventory(w http.ResponseWriter, r *http.Request) error {
	if versionOf(r.Context()) < vInventory {
		return ironwork.Errorf(ironwork.ENOTFOUND, "The resource could not be found.")
	}
	n, err := s.loadNode(r.Context(), r.PathValue("ident"))
	if err != nil {
		return err
	}
	inv, err := s.store.GetNodeInventory(r.Context(), n.ID, n.UUID)
	if err != nil {
		return err
	}
	return s.writeJSON(w, http.StatusOK, map[string]json.RawMessage{"inventory": inv.Inventory, "plugin_data": inv.PluginData})
}
