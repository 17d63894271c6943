package httpapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/ironwork/ironwork"
)

// vExternalEvents is the microversion of POST /v1/events (1.54).
const vExternalEvents = 54

// externalEventTypes are the events Ironic's schema accepts (from Neutron's notifier).
var externalEventTypes = []string{"network.bind_port", "network.unbind_port", "network.delete_port"}

// EventCounter counts the external events the API accepts; the metrics package implements
// it. It is optional: Options.Metrics is asked for it by type assertion.
type EventCounter interface {
	ExternalEvent(event, status string)
}

func (s *Server) externalEventRoutes() {
	s.handle("POST /v1/events", s.postEvents)
}

// postEvents serves POST /v1/events: external events (Neutron's port binding changes),
// validated as Ironic's schema, logged and counted, answered 204. Ironic itself only logs them
// too: no event changes a node.
func (s *Server) postEvents(w http.ResponseWriter, r *http.Request) error {
	if versionOf(r.Context()) < vExternalEvents {
		return ironwork.Errorf(ironwork.ENOTFOUND, "The resource could not be found.")
	}
	body, err := decodeBody(r, "events")
	if err != nil {
		return err
	}
	events, err := parseExternalEvents(body)
	if err != nil {
		return err
	}
	counter, _ := s.opts.Metrics.(EventCounter)
	for _, e := range events {
		s.log.InfoContext(r.Context(), "external event", "event", e["event"], "port", e["port_id"],
			"mac", e["mac_address"], "status", e["status"])
		if counter != nil {
			// The status is the client's free text: only Neutron's port statuses become labels.
			status, _ := e["status"].(string)
			if !slices.Contains([]string{"ACTIVE", "DOWN", "BUILD", "ERROR"}, status) {
				status = "other"
			}
			counter.ExternalEvent(e["event"].(string), status)
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// parseExternalEvents checks a POST /v1/events body as Ironic's JSON schema does.
func parseExternalEvents(body map[string]any) ([]map[string]any, error) {
	schema := func(format string, args ...any) error {
		return invalid("Schema error: "+format, args...)
	}
	for _, k := range slices.Sorted(mapKeys(body)) {
		if k != "events" {
			return nil, schema("Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	raw, ok := body["events"]
	if !ok {
		return nil, schema("'events' is a required property")
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, schema("%s is not of type 'array'", pyRepr(raw))
	}
	if len(list) == 0 {
		return nil, schema("[] should be non-empty")
	}
	out := make([]map[string]any, 0, len(list))
	for _, item := range list {
		e, ok := item.(map[string]any)
		if !ok {
			return nil, schema("%s is not of type 'object'", pyRepr(item))
		}
		for _, k := range slices.Sorted(mapKeys(e)) {
			switch k {
			case "event", "port_id", "mac_address", "status", "device_id", "binding:host_id", "binding:vnic_type":
			default:
				return nil, schema("Additional properties are not allowed ('%s' was unexpected)", k)
			}
		}
		for _, k := range []string{"event", "port_id", "mac_address", "status"} {
			if _, ok := e[k]; !ok {
				return nil, schema("'%s' is a required property", k)
			}
		}
		for _, k := range slices.Sorted(mapKeys(e)) {
			v := e[k]
			str, isStr := v.(string)
			nullable := k == "device_id" || k == "binding:host_id" || k == "binding:vnic_type"
			if v == nil && nullable {
				continue
			}
			if !isStr {
				if nullable {
					return nil, schema("%s is not of type 'string', 'null'", pyRepr(v))
				}
				return nil, schema("%s is not of type 'string'", pyRepr(v))
			}
			switch k {
			case "event":
				if !slices.Contains(externalEventTypes, str) {
					return nil, schema("'%s' is not one of ['%s']", str, strings.Join(externalEventTypes, "', '"))
				}
			case "port_id", "device_id", "binding:host_id":
				if !ironwork.IsUUID(str) {
					return nil, schema("'%s' is not a 'uuid'", str)
				}
			case "mac_address":
				if _, err := ironwork.NormalizeMAC("mac_address", str); err != nil {
					return nil, schema("'%s' is not a 'mac-address'", str)
				}
			}
		}
		out = append(out, e)
	}
	return out, nil
}
