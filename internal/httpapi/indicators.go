package httpapi

import (
	"net/http"
	"sort"
	"strings"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// vIndicators is the microversion of the indicator API.
const vIndicators = 63

func (s *Server) indicatorRoutes() {
	s.handle("GET /v1/nodes/{ident}/management/indicators", s.listIndicators)
	s.handle("GET /v1/nodes/{ident}/management/indicators/{indicator}", s.getIndicator)
	s.handle("PUT /v1/nodes/{ident}/management/indicators/{indicator}", s.setIndicator)
}

func indicatorsAllowed(r *http.Request) error {
	if versionOf(r.Context()) < vIndicators {
		return ironwork.Errorf(ironwork.ENOTFOUND, "The resource could not be found.")
	}
	return nil
}

// splitIndicator splits Ironic's "name@component" at the first "@", as Ironic does.
func splitIndicator(unique string) (name, component string, err error) {
	i := strings.Index(unique, "@")
	if i < 0 {
		return "", "", invalid("Malformed indicator name \"%s\"", unique)
	}
	return unique[:i], unique[i+1:], nil
}

func (s *Server) listIndicators(w http.ResponseWriter, r *http.Request) error {
	if err := indicatorsAllowed(r); err != nil {
		return err
	}
	c, uuid, err := s.condNode(r)
	if err != nil {
		return err
	}
	all, err := conductor.Call(r.Context(), c, conductor.OpSupportedIndicators, conductor.NodeRef{Node: uuid})
	if err != nil {
		return err
	}
	base := s.baseURL(r)
	out := []object{}
	for _, comp := range conductor.IndicatorComponents() {
		names := make([]string, 0, len(all[comp]))
		for n := range all[comp] {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			info := all[comp][n]
			states := info.States
			if states == nil {
				states = []string{}
			}
			out = append(out, object{{"name", n}, {"component", comp}, {"readonly", info.ReadOnly}, {"states", states},
				{"links", links(base, "nodes/"+uuid+"/management/indicators/"+n+"@"+comp)}})
		}
	}
	return s.writeJSON(w, http.StatusOK, object{{"indicators", out}})
}

func (s *Server) getIndicator(w http.ResponseWriter, r *http.Request) error {
	if err := indicatorsAllowed(r); err != nil {
		return err
	}
	name, comp, err := splitIndicator(r.PathValue("indicator"))
	if err != nil {
		return err
	}
	c, uuid, err := s.condNode(r)
	if err != nil {
		return err
	}
	st, err := conductor.Call(r.Context(), c, conductor.OpIndicatorState, conductor.IndicatorRequest{
		NodeRef: conductor.NodeRef{Node: uuid}, Component: comp, Name: name})
	if err != nil {
		return err
	}
	return s.writeJSON(w, http.StatusOK, object{{"state", st}})
}

// setIndicator takes the state from the body ({"state": "ON"}, as the clients send it) or,
// without a body, from the query.
func (s *Server) setIndicator(w http.ResponseWriter, r *http.Request) error {
	if err := indicatorsAllowed(r); err != nil {
		return err
	}
	name, comp, err := splitIndicator(r.PathValue("indicator"))
	if err != nil {
		return err
	}
	state := r.URL.Query().Get("state")
	if r.ContentLength != 0 {
		body, err := decodeBody(r, "indicator")
		if err != nil {
			return err
		}
		for k, v := range body {
			if k != "state" {
				return schemaError("indicator", "Additional properties are not allowed (%s was unexpected)", pyRepr(k))
			}
			str, ok := v.(string)
			if !ok {
				return invalid("Invalid state: %s is not a string.", pyRepr(v))
			}
			state = str
		}
	}
	if state == "" {
		return invalid("Missing argument: \"state\"")
	}
	c, uuid, err := s.condNode(r)
	if err != nil {
		return err
	}
	return noContent(w, conductor.Do(r.Context(), c, conductor.OpSetIndicatorState, conductor.SetIndicatorRequest{
		IndicatorRequest: conductor.IndicatorRequest{NodeRef: conductor.NodeRef{Node: uuid}, Component: comp, Name: name}, State: state}))
}
