package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// vDeployTemplates is the microversion of the deploy templates API (1.55).
const vDeployTemplates = 55

// deployStepInterfaces are the interfaces a deploy step may belong to, as Ironic's
// DEPLOYING_INTERFACE_PRIORITY, in its order.
var deployStepInterfaces = []string{"vendor", "power", "management", "firmware", "deploy", "bios", "raid"}

// customTraitRE is Ironic's pattern for custom traits.
var customTraitRE = regexp.MustCompile(`^CUSTOM_[A-Z0-9_]+$`)

func deployTemplateFields() fieldTable[ironwork.DeployTemplate] {
	type D = ironwork.DeployTemplate
	const v = vDeployTemplates
	return fieldTable[D]{kind: "deploy_template", fields: []field[D]{
		roField[D]("created_at", v, func(d *D) any { return isoTime(d.CreatedAt) }),
		roField[D]("extra", v, func(d *D) any { return obj(d.Extra) }),
		roField[D]("name", v, func(d *D) any { return d.Name }),
		roField[D]("steps", v, func(d *D) any { return renderSteps(d.Steps) }),
		roField[D]("updated_at", v, func(d *D) any { return optTime(d.UpdatedAt) }),
		roField[D]("uuid", v, func(d *D) any { return d.UUID }),
	}}
}

// renderSteps shows a template's steps with the values of secret-looking arguments masked.
func renderSteps(steps []ironwork.DeployTemplateStep) []object {
	out := make([]object, len(steps))
	for i, st := range steps {
		args := ironwork.JSONObject{}
		for k, v := range st.Args {
			if secretKey(k) {
				v = "******"
			}
			args[k] = v
		}
		out[i] = object{{"interface", string(st.Interface)}, {"step", st.Step}, {"args", args}, {"priority", st.Priority}}
	}
	return out
}

// secretKey says whether an argument's value is masked in responses, as oslo's
// mask_dict_password does for keys naming passwords, tokens and keys.
func secretKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"password", "secret", "token", "credential", "_key", "auth"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

func (s *Server) renderDeployTemplate(r *http.Request, d *ironwork.DeployTemplate, fields []string) object {
	out := deployTemplateFields().render(d, versionOf(r.Context()), fields, nil)
	return append(out, kv{"links", links(s.baseURL(r), "deploy_templates/"+d.UUID)})
}

func (s *Server) deployTemplateSpec() listSpec[ironwork.DeployTemplate] {
	return listSpec[ironwork.DeployTemplate]{
		table: deployTemplateFields(), path: "deploy_templates", key: "deploy_templates", defaults: []string{"uuid", "name"},
		sortRefused: []string{"extra", "steps"},
		uuid:        func(d *ironwork.DeployTemplate) string { return d.UUID },
		render:      s.renderDeployTemplate,
		filters:     map[string]int{"fields": vDeployTemplates},
	}
}

func (s *Server) deployTemplateRoutes() {
	s.resource("/v1/deploy_templates", resource{list: s.listDeployTemplates, create: s.createDeployTemplate,
		get: s.getDeployTemplate, patch: s.patchDeployTemplate, del: s.deleteDeployTemplate})
}

// deployTemplatesAllowed answers below 1.55 as Ironic: 404 to reads, 405 to writes.
func deployTemplatesAllowed(r *http.Request) error {
	if versionOf(r.Context()) >= vDeployTemplates {
		return nil
	}
	const msg = "The API version does not allow deploy templates"
	if r.Method == http.MethodGet {
		return ironwork.Errorf(ironwork.ENOTFOUND, msg)
	}
	return methodRefused{msg}
}

func (s *Server) listDeployTemplates(w http.ResponseWriter, r *http.Request) error {
	if err := deployTemplatesAllowed(r); err != nil {
		return err
	}
	return serveList(s, w, r, s.deployTemplateSpec(), false, func(p listParams) ([]*ironwork.DeployTemplate, error) {
		return s.store.ListDeployTemplates(r.Context(), sqlstore.DeployTemplateFilter{}, p.page)
	})
}

// templateIdent checks a template identifier as Ironic's uuid_or_name.
func templateIdent(r *http.Request) (string, error) {
	id := r.PathValue("ident")
	if err := uuidOrName("template_ident", id); err != nil {
		return "", err
	}
	return id, nil
}

func (s *Server) getDeployTemplate(w http.ResponseWriter, r *http.Request) error {
	if err := deployTemplatesAllowed(r); err != nil {
		return err
	}
	load := func(r *http.Request) (*ironwork.DeployTemplate, error) {
		id, err := templateIdent(r)
		if err != nil {
			return nil, err
		}
		return s.store.GetDeployTemplate(r.Context(), id)
	}
	return serveOne(s, w, r, deployTemplateFields(), load, s.renderDeployTemplate)
}

// templateFromDoc validates a template document (a create body, or a patched template) the
// way Ironic's TEMPLATE_SCHEMA and its duplicate-step check do, and returns the template.
func templateFromDoc(doc map[string]any, create bool) (*ironwork.DeployTemplate, error) {
	const kind = "template"
	for _, k := range slices.Sorted(mapKeys(doc)) {
		switch k {
		case "name", "steps", "extra", "uuid":
		case "created_at", "updated_at", "links", "id":
			if !create {
				continue
			}
			fallthrough
		default:
			return nil, schemaError(kind, "Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	for _, k := range []string{"steps", "name"} {
		if _, ok := doc[k]; !ok {
			return nil, schemaError(kind, "'%s' is a required property", k)
		}
	}
	d := &ironwork.DeployTemplate{}
	name, ok := doc["name"].(string)
	if !ok {
		return nil, schemaError(kind, "%s is not of type 'string'", pyRepr(doc["name"]))
	}
	if len(name) < 1 || len(name) > 255 || (!customTraitRE.MatchString(name) && checkTrait(name) != nil) {
		return nil, schemaError(kind, "%s is not valid under any of the given schemas", pyRepr(name))
	}
	d.Name = name
	extra, uuid, err := extraAndUUID(kind, doc)
	if err != nil {
		return nil, err
	}
	d.Extra, d.UUID = extra, uuid
	steps, dups, err := stepsOf(kind, doc, stepFromDoc, func(st ironwork.DeployTemplateStep) string {
		return "interface: " + string(st.Interface) + ", step: " + st.Step
	})
	if err != nil {
		return nil, err
	}
	d.Steps = steps
	if len(dups) > 0 {
		return nil, invalid("Deploy template invalid: Duplicate deploy steps. A template cannot have multiple deploy steps with the same interface and step. Duplicates: %s.",
			strings.Join(dups, "; "))
	}
	return d, nil
}

func mapKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// stepFromDoc validates one step as Ironic's DEPLOY_STEP_SCHEMA.
// extraAndUUID reads the optional extra and uuid members of a deploy template or runbook
// document, as Ironic's schemas check them.
func extraAndUUID(kind string, doc map[string]any) (ironwork.JSONObject, string, error) {
	var extra ironwork.JSONObject
	switch e := doc["extra"].(type) {
	case nil:
	case map[string]any:
		extra = normalizeJSON(e)
	default:
		return nil, "", schemaError(kind, "%s is not of type 'object', 'null'", pyRepr(e))
	}
	var id string
	switch u := doc["uuid"].(type) {
	case nil:
	case string:
		if !ironwork.IsUUID(u) {
			return nil, "", invalid("Expected UUID for uuid: %s", u)
		}
		id = canonicalUUID(u)
	default:
		return nil, "", schemaError(kind, "%s is not of type 'string', 'null'", pyRepr(u))
	}
	return extra, id, nil
}

// stepsOf reads the steps member of a deploy template or runbook document: a non-empty list
// whose items parse reads, and the keys (as key names them) that appear more than once.
func stepsOf[S any](kind string, doc map[string]any, parse func(any) (S, error), key func(S) string) ([]S, []string, error) {
	list, ok := doc["steps"].([]any)
	if !ok {
		return nil, nil, schemaError(kind, "%s is not of type 'array'", pyRepr(doc["steps"]))
	}
	if len(list) == 0 {
		return nil, nil, schemaError(kind, "[] is too short")
	}
	seen := map[string]bool{}
	var steps []S
	var dups []string
	for _, item := range list {
		st, err := parse(item)
		if err != nil {
			return nil, nil, err
		}
		k := key(st)
		if seen[k] && !slices.Contains(dups, k) {
			dups = append(dups, k)
		}
		seen[k] = true
		steps = append(steps, st)
	}
	return steps, dups, nil
}

// stepNames reads a template or runbook step's interface (one of the deploy step interfaces)
// and step name, as Ironic's schemas check them.
func stepNames(kind string, m map[string]any) (iface, step string, err error) {
	iface, ok := m["interface"].(string)
	if !ok {
		return "", "", schemaError(kind, "%s is not of type 'string'", pyRepr(m["interface"]))
	}
	if !slices.Contains(deployStepInterfaces, iface) {
		quoted := make([]string, len(deployStepInterfaces))
		for i, v := range deployStepInterfaces {
			quoted[i] = "'" + v + "'"
		}
		return "", "", schemaError(kind, "'%s' is not one of [%s]", iface, strings.Join(quoted, ", "))
	}
	step, ok = m["step"].(string)
	if !ok {
		return "", "", schemaError(kind, "%s is not of type 'string'", pyRepr(m["step"]))
	}
	if step == "" {
		return "", "", schemaError(kind, "'' is too short")
	}
	return iface, step, nil
}

func stepFromDoc(item any) (ironwork.DeployTemplateStep, error) {
	const kind = "template"
	var st ironwork.DeployTemplateStep
	m, ok := item.(map[string]any)
	if !ok {
		return st, schemaError(kind, "%s is not of type 'object'", pyRepr(item))
	}
	for _, k := range slices.Sorted(mapKeys(m)) {
		if !slices.Contains([]string{"args", "interface", "priority", "step"}, k) {
			return st, schemaError(kind, "Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	for _, k := range []string{"interface", "step", "args", "priority"} {
		if _, ok := m[k]; !ok {
			return st, schemaError(kind, "'%s' is a required property", k)
		}
	}
	args, ok := m["args"].(map[string]any)
	if !ok {
		return st, schemaError(kind, "%s is not of type 'object'", pyRepr(m["args"]))
	}
	iface, step, err := stepNames(kind, m)
	if err != nil {
		return st, err
	}
	prio, ok := priorityOf(m["priority"])
	if !ok {
		return st, schemaError(kind, "%s is not valid under any of the given schemas", pyRepr(m["priority"]))
	}
	st.Interface, st.Step, st.Args, st.Priority = ironwork.InterfaceKind(iface), step, normalizeJSON(args), prio
	return st, nil
}

// priorityOf reads a step priority: a non-negative integer, or a string of digits.
func priorityOf(v any) (int, bool) {
	switch p := v.(type) {
	case json.Number:
		n, err := strconv.ParseInt(p.String(), 10, 32)
		return int(n), err == nil && n >= 0
	case float64:
		return int(p), p >= 0 && p == float64(int(p))
	case int:
		return p, p >= 0
	case string:
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return 0, false
		}
		n, err := strconv.Atoi(p)
		return n, err == nil
	}
	return 0, false
}

func (s *Server) createDeployTemplate(w http.ResponseWriter, r *http.Request) error {
	if err := deployTemplatesAllowed(r); err != nil {
		return err
	}
	body, err := decodeBody(r, "template")
	if err != nil {
		return err
	}
	d, err := templateFromDoc(body, true)
	if err != nil {
		return err
	}
	if err := s.store.CreateDeployTemplate(r.Context(), d); err != nil {
		return err
	}
	w.Header().Set("Location", s.baseURL(r)+"/v1/deploy_templates/"+d.UUID)
	return s.writeJSON(w, http.StatusCreated, s.renderDeployTemplate(r, d, nil))
}

// templateDoc is a template as the document a JSON PATCH applies to.
func templateDoc(d *ironwork.DeployTemplate) map[string]any {
	steps := make([]any, len(d.Steps))
	for i, st := range d.Steps {
		args := map[string]any(st.Args)
		if args == nil {
			args = map[string]any{}
		}
		steps[i] = map[string]any{"interface": string(st.Interface), "step": st.Step, "args": args, "priority": json.Number(fmt.Sprint(st.Priority))}
	}
	doc := map[string]any{"name": d.Name, "steps": steps, "uuid": d.UUID}
	if d.Extra != nil {
		doc["extra"] = map[string]any(d.Extra)
	} else {
		doc["extra"] = map[string]any{}
	}
	return plainJSON(doc).(map[string]any)
}

func (s *Server) patchDeployTemplate(w http.ResponseWriter, r *http.Request) error {
	if err := deployTemplatesAllowed(r); err != nil {
		return err
	}
	id, err := templateIdent(r)
	if err != nil {
		return err
	}
	ops, err := readPatch(r)
	if err != nil {
		return err
	}
	allowed := []string{"extra", "name", "steps"}
	for _, op := range ops {
		if !slices.Contains(allowed, op.root()) {
			return invalid("Cannot patch %s. Only the following can be updated: %s", op.Path, strings.Join(allowed, ", "))
		}
	}
	d, err := s.store.UpdateDeployTemplate(r.Context(), id, func(d *ironwork.DeployTemplate) error {
		after, err := applyPatch(templateDoc(d), ops)
		if err != nil {
			return err
		}
		nd, err := templateFromDoc(after, false)
		if err != nil {
			return err
		}
		d.Name, d.Steps, d.Extra = nd.Name, nd.Steps, nd.Extra
		return nil
	})
	if err != nil {
		return err
	}
	return s.writeJSON(w, http.StatusOK, s.renderDeployTemplate(r, d, nil))
}

func (s *Server) deleteDeployTemplate(w http.ResponseWriter, r *http.Request) error {
	if err := deployTemplatesAllowed(r); err != nil {
		return err
	}
	id, err := templateIdent(r)
	if err != nil {
		return err
	}
	return noContent(w, s.store.DeleteDeployTemplate(r.Context(), id))
}
