package httpapi

import (
	"io"
	"net/http"
	"regexp"
	"slices"

	"github.com/ironwork/ironwork"
)

// maxTraits is the most traits a node may have, as in Ironic.
const maxTraits = 50

// traitRE accepts custom traits and names shaped like the standard os-traits names.
var traitRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

func checkTrait(t string) error {
	if len(t) == 0 || len(t) > 255 || !traitRE.MatchString(t) {
		return invalid("Schema error for trait: '%s' is not a valid trait: use CUSTOM_ followed by upper-case letters, digits and '_', or a standard trait name", t)
	}
	return nil
}

func (s *Server) traitsAllowed(r *http.Request) error {
	if versionOf(r.Context()) < vTraits {
		return ironwork.Errorf(ironwork.ENOTFOUND, "The resource could not be found.")
	}
	return nil
}

func (s *Server) getTraits(w http.ResponseWriter, r *http.Request) error {
	if err := s.traitsAllowed(r); err != nil {
		return err
	}
	n, err := s.loadNode(r.Context(), r.PathValue("ident"))
	if err != nil {
		return err
	}
	return s.writeJSON(w, http.StatusOK, object{{"traits", n.Traits}})
}

// changeTraits applies fn to a node's traits under the same rules as a node update.
func (s *Server) changeTraits(r *http.Request, fn func(n *ironwork.Node) error) error {
	ident := r.PathValue("ident")
	if err := checkNodeIdent(r.Context(), ident); err != nil {
		return err
	}
	_, err := s.store.UpdateNode(r.Context(), ident, func(n *ironwork.Node) error {
		if n.Reservation != "" {
			return lockedError(n)
		}
		if err := fn(n); err != nil {
			return err
		}
		if len(n.Traits) > maxTraits {
			return invalid("Could not modify traits for node %s as it would exceed the maximum number of traits per node (%d vs. %d)",
				n.UUID, len(n.Traits), maxTraits)
		}
		slices.Sort(n.Traits)
		return nil
	})
	return err
}

func (s *Server) setTraits(w http.ResponseWriter, r *http.Request) error {
	if err := s.traitsAllowed(r); err != nil {
		return err
	}
	body, err := decodeBody(r, "body")
	if err != nil {
		return err
	}
	var traits []string
	for k, v := range body {
		if k != "traits" {
			return schemaError("body", "Additional properties are not allowed ('%s' was unexpected)", k)
		}
		list, ok := v.([]any)
		if !ok {
			return schemaError("body", "%s is not of type 'array'", pyRepr(v))
		}
		for _, item := range list {
			t, ok := item.(string)
			if !ok {
				return schemaError("trait", "%s is not of type 'string'", pyRepr(item))
			}
			if err := checkTrait(t); err != nil {
				return err
			}
			if !slices.Contains(traits, t) {
				traits = append(traits, t)
			}
		}
	}
	if _, ok := body["traits"]; !ok {
		return invalid("A single node trait may be added via PUT /v1/nodes/<node identifier>/traits/<trait> with no body, or all node traits may be replaced via PUT /v1/nodes/<node identifier>/traits with the list of traits specified in the request body.")
	}
	return noContent(w, s.changeTraits(r, func(n *ironwork.Node) error {
		n.Traits = append([]string{}, traits...)
		return nil
	}))
}

func (s *Server) addTrait(w http.ResponseWriter, r *http.Request) error {
	if err := s.traitsAllowed(r); err != nil {
		return err
	}
	if b, _ := io.ReadAll(r.Body); len(b) > 0 {
		return invalid("No body should be provided when adding a trait")
	}
	t := r.PathValue("trait")
	if err := checkTrait(t); err != nil {
		return err
	}
	if err := s.changeTraits(r, func(n *ironwork.Node) error {
		if !slices.Contains(n.Traits, t) {
			n.Traits = append(n.Traits, t)
		}
		return nil
	}); err != nil {
		return err
	}
	w.Header().Set("Location", s.baseURL(r)+"/v1/nodes/"+r.PathValue("ident")+"/traits/"+t)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) deleteTraits(w http.ResponseWriter, r *http.Request) error {
	if err := s.traitsAllowed(r); err != nil {
		return err
	}
	return noContent(w, s.changeTraits(r, func(n *ironwork.Node) error { n.Traits = []string{}; return nil }))
}

func (s *Server) deleteTrait(w http.ResponseWriter, r *http.Request) error {
	if err := s.traitsAllowed(r); err != nil {
		return err
	}
	t := r.PathValue("trait")
	return noContent(w, s.changeTraits(r, func(n *ironwork.Node) error {
		i := slices.Index(n.Traits, t)
		if i < 0 {
			return ironwork.Errorf(ironwork.ENOTFOUND, "Node %s doesn't have a trait '%s'", n.UUID, t)
		}
		n.Traits = slices.Delete(n.Traits, i, i+1)
		return nil
	}))
}
