package webui

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/ironwork/ironwork/api"
)

var funcs = template.FuncMap{
	"str":  str,
	"list": func(v ...string) []string { return v },
	"json": func(v any) string { b, _ := json.MarshalIndent(v, "", "  "); return string(b) },
	"step": stepName,
	"bytes": func(v any) string {
		f, ok := v.(float64)
		if !ok {
			return ""
		}
		return humanBytes(int64(f))
	},
}

// str shows a JSON value in a cell: "" for null, the text of strings, JSON for the rest.
func str(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool, float64:
		return fmt.Sprint(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// stepName is "interface.step" of a deploy or clean step object, "" when none runs.
func stepName(v any) string {
	m, _ := v.(map[string]any)
	if len(m) == 0 {
		return ""
	}
	return fmt.Sprintf("%v.%v", m["interface"], m["step"])
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// fleetFields are the node fields the fleet page reads.
const fleetFields = "uuid,name,provision_state,target_provision_state,power_state,maintenance,last_error,driver,resource_class,fault"

// stateCount is one provision state and its number of nodes.
type stateCount struct {
	State string
	Count int
}

// fleet serves GET /ui/: counts by provision state and the nodes matching the filters
// (q: a part of the name or UUID; state, power, driver: equal; maintenance: true or false).
func (h *Handler) fleet(w http.ResponseWriter, r *http.Request) {
	nodes, err := h.list(r, "/v1/nodes?limit=1000&sort_key=name&fields="+fleetFields, "nodes")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	search := strings.ToLower(strings.TrimSpace(q.Get("q")))
	counts := map[string]int{}
	states := map[string]string{} // node UUID -> provision state, for the page's live counts
	var shown []map[string]any
	drivers := map[string]bool{}
	for _, n := range nodes {
		st := str(n["provision_state"])
		counts[st]++
		states[str(n["uuid"])] = st
		drivers[str(n["driver"])] = true
		if search != "" && !strings.Contains(strings.ToLower(str(n["name"])), search) &&
			!strings.Contains(strings.ToLower(str(n["uuid"])), search) {
			continue
		}
		if v := q.Get("state"); v != "" && v != st {
			continue
		}
		if v := q.Get("power"); v != "" && v != str(n["power_state"]) {
			continue
		}
		if v := q.Get("driver"); v != "" && v != str(n["driver"]) {
			continue
		}
		if v := q.Get("maintenance"); v != "" && v != str(n["maintenance"]) {
			continue
		}
		shown = append(shown, n)
	}
	var byState []stateCount
	for s, c := range counts {
		byState = append(byState, stateCount{s, c})
	}
	sort.Slice(byState, func(i, j int) bool { return byState[i].State < byState[j].State })
	driverList := make([]string, 0, len(drivers))
	for d := range drivers {
		driverList = append(driverList, d)
	}
	slices.Sort(driverList)
	statesJSON, _ := json.Marshal(states)
	h.render(w, r, http.StatusOK, "fleet", map[string]any{
		"Title": "Fleet", "Nodes": shown, "Total": len(nodes), "Counts": byState, "Query": q,
		"Drivers": driverList, "Filtered": len(shown) != len(nodes),
		"States": template.JS(statesJSON), // json.Marshal escapes <, > and &
	})
}

// node serves GET /ui/nodes/{ident}: the node's fields as the API shows them, its ports, its
// history, and the actions.
func (h *Handler) node(w http.ResponseWriter, r *http.Request) {
	h.showNode(w, r, http.StatusOK, "", r.URL.Query().Get("done"))
}

func (h *Handler) showNode(w http.ResponseWriter, r *http.Request, status int, actionErr, done string) {
	ident := url.PathEscape(r.PathValue("ident"))
	var n map[string]any
	if err := h.call(r, http.MethodGet, "/v1/nodes/"+ident, nil, &n); err != nil {
		h.fail(w, r, err)
		return
	}
	uuid := url.PathEscape(str(n["uuid"]))
	ports, err := h.list(r, "/v1/nodes/"+uuid+"/ports/detail", "ports")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var hist struct {
		History []map[string]any `json:"history"`
	}
	if err := h.call(r, http.MethodGet, "/v1/nodes/"+uuid+"/history?detail=true", nil, &hist); err != nil {
		h.fail(w, r, err)
		return
	}
	slices.Reverse(hist.History) // newest first
	var progress map[string]any
	if dii, ok := n["driver_internal_info"].(map[string]any); ok {
		progress, _ = dii["ironwork_agent_progress"].(map[string]any)
	}
	fields := make([]string, 0, len(n))
	for k := range n {
		if k != "links" && k != "ports" && k != "portgroups" && k != "states" && k != "volume" {
			fields = append(fields, k)
		}
	}
	slices.Sort(fields)
	name := str(n["name"])
	if name == "" {
		name = str(n["uuid"])
	}
	h.render(w, r, status, "node", map[string]any{
		"Title": name, "Node": n, "Fields": fields, "Ports": ports, "History": hist.History,
		"Progress": progress, "ActionError": actionErr, "Done": done, "Actions": actions,
		"ConsoleActions": consoleActions,
	})
}

// An action is one button of the node page and the API calls it makes.
type action struct {
	Name, Label string
	// Needs names the form fields the confirmation asks for ("image" for deploy, "reason").
	Needs string
}

// actions are the node page's buttons, in order.
var actions = []action{
	{"manage", "Manage", ""}, {"provide", "Provide", ""}, {"deploy", "Deploy", "image"},
	{"undeploy", "Undeploy", ""}, {"inspect", "Inspect", ""},
	{"power-on", "Power on", ""}, {"power-off", "Power off", ""}, {"reboot", "Reboot", ""},
	{"maintenance-on", "Maintenance on", "reason"}, {"maintenance-off", "Maintenance off", ""},
}

// consoleActions are the buttons of the node page's serial console section.
var consoleActions = []action{{"console-on", "Enable console", ""}, {"console-off", "Disable console", ""}}

// action serves POST /ui/nodes/{ident}/actions: one confirmed action, then back to the node.
func (h *Handler) action(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := checkCSRF(r); err != nil {
		h.log.WarnContext(r.Context(), "refuse console action", "path", r.URL.Path, "error", err)
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	ident := url.PathEscape(r.PathValue("ident"))
	var n map[string]any
	if err := h.call(r, http.MethodGet, "/v1/nodes/"+ident+"?fields=uuid", nil, &n); err != nil {
		h.fail(w, r, err)
		return
	}
	base := "/v1/nodes/" + url.PathEscape(str(n["uuid"]))
	act := r.PostFormValue("action")
	err := h.do(r, base, act)
	if err != nil {
		var ae *api.Error
		status := http.StatusBadRequest
		if errors.As(err, &ae) {
			status = ae.Status
		}
		h.showNode(w, r, status, err.Error(), "")
		return
	}
	http.Redirect(w, r, Prefix+"nodes/"+url.PathEscape(str(n["uuid"]))+"?done="+url.QueryEscape(act), http.StatusSeeOther)
}

// do makes the API calls of one action.
func (h *Handler) do(r *http.Request, base, act string) error {
	if r.PostFormValue("confirm") != "yes" {
		return &api.Error{Status: http.StatusBadRequest, Message: "The action was not confirmed."}
	}
	provision := func(target string) error {
		return h.call(r, http.MethodPut, base+"/states/provision", map[string]any{"target": target}, nil)
	}
	power := func(target string) error {
		return h.call(r, http.MethodPut, base+"/states/power", map[string]any{"target": target}, nil)
	}
	switch act {
	case "manage", "provide", "inspect":
		return provision(act)
	case "undeploy":
		return provision("deleted")
	case "deploy":
		image, sum := strings.TrimSpace(r.PostFormValue("image_source")), strings.TrimSpace(r.PostFormValue("image_checksum"))
		if image == "" {
			return &api.Error{Status: http.StatusBadRequest, Message: "Deploy needs an image URL."}
		}
		ops := []api.PatchOp{{Op: "add", Path: "/instance_info/image_source", Value: image}}
		if sum != "" {
			ops = append(ops, api.PatchOp{Op: "add", Path: "/instance_info/image_checksum", Value: sum})
		}
		if err := h.call(r, http.MethodPatch, base, ops, nil); err != nil {
			return err
		}
		return provision("active")
	case "power-on":
		return power("power on")
	case "power-off":
		return power("power off")
	case "reboot":
		return power("rebooting")
	case "maintenance-on":
		body := map[string]any{}
		if reason := strings.TrimSpace(r.PostFormValue("reason")); reason != "" {
			body["reason"] = reason
		}
		return h.call(r, http.MethodPut, base+"/maintenance", body, nil)
	case "console-on", "console-off":
		return h.call(r, http.MethodPut, base+"/states/console", map[string]any{"enabled": act == "console-on"}, nil)
	case "maintenance-off":
		return h.call(r, http.MethodDelete, base+"/maintenance", nil, nil)
	}
	return &api.Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("Unknown action %q.", act)}
}
