package httpapi

import (
	"net/http"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

func (s *Server) childrenRoutes() {
	s.handle("GET /v1/nodes/{ident}/children", s.nodeChildren)
}

// nodeChildren serves GET /v1/nodes/{node}/children (1.83): the UUIDs of the nodes whose
// parent_node is this node, and a link to the node list filtered by it, as Ironic.
func (s *Server) nodeChildren(w http.ResponseWriter, r *http.Request) error {
	if versionOf(r.Context()) < vParentNode {
		return ironwork.Errorf(ironwork.ENOTFOUND, "The resource could not be found.")
	}
	n, err := s.loadNode(r.Context(), r.PathValue("ident"))
	if err != nil {
		return err
	}
	kids, err := s.store.ListNodes(r.Context(), sqlstore.NodeFilter{ParentNode: n.UUID}, sqlstore.Page{SortKey: "id", SortDir: "asc"})
	if err != nil {
		return err
	}
	uuids := make([]string, len(kids))
	for i, k := range kids {
		uuids[i] = k.UUID
	}
	return s.writeJSON(w, http.StatusOK, object{
		{"children", uuids},
		{"links", link{Href: s.baseURL(r) + "/v1/nodes?parent_node=" + n.UUID, Rel: "children"}},
	})
}
