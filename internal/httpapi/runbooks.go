package httpapi

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// The microversions of runbooks: the API (1.92), and traits, description and free names (1.112).
const (
	vRunbooks      = 92
	vRunbookTraits = 112
)

// runbookNameRE is the name pattern of runbooks from 1.112 (before, a name is a trait).
var runbookNameRE = regexp.MustCompile(`^[A-Za-z0-9\-._~]+$`)

func runbookFields() fieldTable[ironwork.Runbook] {
	type R = ironwork.Runbook
	const v = vRunbooks
	return fieldTable[R]{kind: "runbook", fields: []field[R]{
		roField[R]("created_at", v, func(b *R) any { return isoTime(b.CreatedAt) }),
		roField[R]("description", vRunbookTraits, func(b *R) any { return optStr(b.Description) }),
		roField[R]("disable_ramdisk", v, func(b *R) any { return b.DisableRamdisk }),
		roField[R]("extra", v, func(b *R) any { return obj(b.Extra) }),
		roField[R]("name", v, func(b *R) any { return b.Name }),
		roField[R]("owner", v, func(b *R) any { return optStr(b.Owner) }),
		roField[R]("public", v, func(b *R) any { return b.Public }),
		roField[R]("steps", v, func(b *R) any { return renderRunbookSteps(b.Steps) }),
		roField[R]("traits", vRunbookTraits, func(b *R) any { return traitList(b.Traits) }),
		roField[R]("updated_at", v, func(b *R) any { return optTime(b.UpdatedAt) }),
		roField[R]("uuid", v, func(b *R) any { return b.UUID }),
	}}
}

func traitList(t []string) []string {
	if t == nil {
		return []string{}
	}
	return t
}

func renderRunbookSteps(steps []ironwork.RunbookStep) []object {
	out := make([]object, len(steps))
	for i, st := range steps {
		args := ironwork.JSONObject{}
		for k, v := range st.Args {
			if secretKey(k) {
				v = "******"
			}
			args[k] = v
		}
		out[i] = object{{"interface", string(st.Interface)}, {"step", st.Step}, {"args", args}, {"order", st.Order}}
	}
	return out
}

func (s *Server) renderRunbook(r *http.Request, b *ironwork.Runbook, fields []string) object {
	out := runbookFields().render(b, versionOf(r.Context()), fields, nil)
	return append(out, kv{"links", links(s.baseURL(r), "runbooks/"+b.UUID)})
}

func (s *Server) runbookRoutes() {
	s.resource("/v1/runbooks", resource{list: s.listRunbooks, create: s.createRunbook,
		get: s.getRunbook, patch: s.patchRunbook, del: s.deleteRunbook})
	s.handle("GET /v1/runbooks/{ident}/traits", s.getRunbookTraits)
	s.handle("PUT /v1/runbooks/{ident}/traits", s.putRunbookTraits)
	s.handle("PUT /v1/runbooks/{ident}/traits/{trait}", s.putRunbookTraits)
	s.handle("DELETE /v1/runbooks/{ident}/traits/{trait}", s.deleteRunbookTrait)
}

// runbooksAllowed answers below 1.92 as Ironic: 404 to reads, 405 to writes.
func runbooksAllowed(r *http.Request) error {
	if versionOf(r.Context()) >= vRunbooks {
		return nil
	}
	if r.Method == http.MethodGet {
		return ironwork.Errorf(ironwork.ENOTFOUND, "The API version does not allow runbooks")
	}
	return errMethodNotAllowed
}

func (s *Server) listRunbooks(w http.ResponseWriter, r *http.Request) error {
	if err := runbooksAllowed(r); err != nil {
		return err
	}
	spec := listSpec[ironwork.Runbook]{
		table: runbookFields(), path: "runbooks", key: "runbooks", defaults: []string{"uuid", "name"},
		sortRefused: []string{"extra", "steps", "traits"},
		uuid:        func(b *ironwork.Runbook) string { return b.UUID },
		render:      s.renderRunbook,
		filters:     map[string]int{"fields": vRunbooks, "project": vRunbooks},
	}
	return serveList(s, w, r, spec, false, func(p listParams) ([]*ironwork.Runbook, error) {
		// A project-scoped caller sees its own runbooks and the public ones (Ironic's
		// check_list_policy then the "project" filter).
		return s.store.ListRunbooks(r.Context(), sqlstore.RunbookFilter{Project: cmp.Or(listProject(r.Context()), r.URL.Query().Get("project"))}, p.page)
	})
}

func runbookIdent(r *http.Request) (string, error) {
	id := r.PathValue("ident")
	if err := uuidOrName("runbook_ident", id); err != nil {
		return "", err
	}
	return id, nil
}

func (s *Server) loadRunbook(r *http.Request) (*ironwork.Runbook, error) {
	id, err := runbookIdent(r)
	if err != nil {
		return nil, err
	}
	return s.store.GetRunbook(r.Context(), id)
}

func (s *Server) getRunbook(w http.ResponseWriter, r *http.Request) error {
	if err := runbooksAllowed(r); err != nil {
		return err
	}
	return serveOne(s, w, r, runbookFields(), s.loadRunbook, s.renderRunbook)
}

// runbookFromDoc validates a runbook document (a create body, or a patched runbook) as
// Ironic's runbook schema of version ver, and returns the runbook.
func runbookFromDoc(doc map[string]any, ver int, create bool) (*ironwork.Runbook, error) {
	const kind = "runbook"
	for _, k := range slices.Sorted(mapKeys(doc)) {
		switch k {
		case "name", "steps", "extra", "uuid", "disable_ramdisk", "public", "owner":
		case "description":
			if ver >= vRunbookTraits {
				continue
			}
			return nil, schemaError(kind, "Additional properties are not allowed ('%s' was unexpected)", k)
		case "created_at", "updated_at", "links", "id", "traits":
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
	b := &ironwork.Runbook{}
	name, ok := doc["name"].(string)
	if !ok {
		return nil, schemaError(kind, "%s is not of type 'string'", pyRepr(doc["name"]))
	}
	validName := runbookNameRE.MatchString(name)
	if ver < vRunbookTraits && create {
		validName = customTraitRE.MatchString(name) || checkTrait(name) == nil
	}
	if len(name) < 1 || len(name) > 255 || !validName {
		return nil, schemaError(kind, "%s is not valid under any of the given schemas", pyRepr(name))
	}
	b.Name = name
	var err error
	if b.Description, err = asString(kind, doc["description"], 255); err != nil {
		return nil, err
	}
	if b.Owner, err = asString(kind, doc["owner"], 255); err != nil {
		return nil, err
	}
	for k, p := range map[string]*bool{"public": &b.Public, "disable_ramdisk": &b.DisableRamdisk} {
		switch v := doc[k].(type) {
		case nil:
		case bool:
			*p = v
		default:
			return nil, schemaError(kind, "%s is not of type 'boolean', 'null'", pyRepr(v))
		}
	}
	extra, uuid, err := extraAndUUID(kind, doc)
	if err != nil {
		return nil, err
	}
	b.Extra, b.UUID = extra, uuid
	steps, dups, err := stepsOf(kind, doc, runbookStepFromDoc, func(st ironwork.RunbookStep) string {
		return "interface: " + string(st.Interface) + ", step: " + st.Step
	})
	if err != nil {
		return nil, err
	}
	b.Steps = steps
	if len(dups) > 0 {
		return nil, invalid("Runbook invalid: Duplicate steps. A runbook cannot have multiple steps with the same interface and step. Duplicates: %s.",
			strings.Join(dups, "; "))
	}
	if b.Public && b.Owner != "" {
		return nil, invalid("There cannot be an owner for a public runbook")
	}
	return b, nil
}

// runbookStepFromDoc validates one step as Ironic's RUNBOOK_STEP_SCHEMA.
func runbookStepFromDoc(item any) (ironwork.RunbookStep, error) {
	const kind = "runbook"
	var st ironwork.RunbookStep
	m, ok := item.(map[string]any)
	if !ok {
		return st, schemaError(kind, "%s is not of type 'object'", pyRepr(item))
	}
	for _, k := range slices.Sorted(mapKeys(m)) {
		if !slices.Contains([]string{"args", "interface", "order", "step"}, k) {
			return st, schemaError(kind, "Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	for _, k := range []string{"interface", "step", "order"} {
		if _, ok := m[k]; !ok {
			return st, schemaError(kind, "'%s' is a required property", k)
		}
	}
	args := map[string]any{}
	if a, present := m["args"]; present {
		if args, ok = a.(map[string]any); !ok {
			return st, schemaError(kind, "%s is not of type 'object'", pyRepr(a))
		}
	}
	iface, step, err := stepNames(kind, m)
	if err != nil {
		return st, err
	}
	order, ok := priorityOf(m["order"])
	if !ok {
		return st, schemaError(kind, "%s is not valid under any of the given schemas", pyRepr(m["order"]))
	}
	st.Interface, st.Step, st.Args, st.Order = ironwork.InterfaceKind(iface), step, normalizeJSON(args), order
	return st, nil
}

func (s *Server) createRunbook(w http.ResponseWriter, r *http.Request) error {
	if err := runbooksAllowed(r); err != nil {
		return err
	}
	body, err := decodeBody(r, "runbook")
	if err != nil {
		return err
	}
	b, err := runbookFromDoc(body, versionOf(r.Context()), true)
	if err != nil {
		return err
	}
	// A project-scoped creator makes runbooks of its own project only, never public ones.
	if p := PrincipalOf(r.Context()); !p.System {
		if b.Owner != "" && b.Owner != p.ProjectID {
			return invalid("Cannot create a runbook as a project scoped admin with an owner other than your own project.")
		}
		if p.ProjectID != "" && b.Public {
			return invalid("Cannot create a public runbook as a project scoped admin.")
		}
		b.Owner = p.ProjectID
	}
	if err := s.store.CreateRunbook(r.Context(), b); err != nil {
		return err
	}
	w.Header().Set("Location", s.baseURL(r)+"/v1/runbooks/"+b.UUID)
	return s.writeJSON(w, http.StatusCreated, s.renderRunbook(r, b, nil))
}

// runbookDoc is a runbook as the document a JSON PATCH applies to.
func runbookDoc(b *ironwork.Runbook) map[string]any {
	steps := make([]any, len(b.Steps))
	for i, st := range b.Steps {
		args := map[string]any(st.Args)
		if args == nil {
			args = map[string]any{}
		}
		steps[i] = map[string]any{"interface": string(st.Interface), "step": st.Step, "args": args, "order": json.Number(fmt.Sprint(st.Order))}
	}
	doc := map[string]any{"name": b.Name, "steps": steps, "uuid": b.UUID, "public": b.Public,
		"disable_ramdisk": b.DisableRamdisk, "extra": map[string]any{}}
	if b.Extra != nil {
		doc["extra"] = map[string]any(b.Extra)
	}
	if b.Owner != "" {
		doc["owner"] = b.Owner
	}
	if b.Description != "" {
		doc["description"] = b.Description
	}
	return plainJSON(doc).(map[string]any)
}

func (s *Server) patchRunbook(w http.ResponseWriter, r *http.Request) error {
	if err := runbooksAllowed(r); err != nil {
		return err
	}
	ver := versionOf(r.Context())
	id, err := runbookIdent(r)
	if err != nil {
		return err
	}
	ops, err := readPatch(r)
	if err != nil {
		return err
	}
	allowed := []string{"disable_ramdisk", "extra", "name", "owner", "public", "steps"}
	if ver >= vRunbookTraits {
		allowed = append(allowed, "description")
	}
	settingOwner, settingPublic := false, false
	for _, op := range ops {
		if !slices.Contains(allowed, op.root()) {
			return invalid("Cannot patch %s. Only the following can be updated: %s", op.Path, strings.Join(allowed, ", "))
		}
		settingOwner = settingOwner || (op.root() == "owner" && op.Op != "remove")
		settingPublic = settingPublic || op.root() == "public"
	}
	b, err := s.store.UpdateRunbook(r.Context(), id, func(b *ironwork.Runbook) error {
		doc := runbookDoc(b)
		if settingPublic {
			delete(doc, "owner") // making a runbook public (or not) clears its owner, as Ironic
		}
		after, err := applyPatch(doc, ops)
		if err != nil {
			return err
		}
		if settingOwner && after["public"] == true {
			return invalid("There cannot be an owner for a public runbook")
		}
		nb, err := runbookFromDoc(after, vRunbookTraits, false)
		if err != nil {
			return err
		}
		b.Name, b.Steps, b.Extra, b.Owner, b.Public, b.DisableRamdisk, b.Description =
			nb.Name, nb.Steps, nb.Extra, nb.Owner, nb.Public, nb.DisableRamdisk, nb.Description
		return nil
	})
	if err != nil {
		return err
	}
	return s.writeJSON(w, http.StatusOK, s.renderRunbook(r, b, nil))
}

func (s *Server) deleteRunbook(w http.ResponseWriter, r *http.Request) error {
	if err := runbooksAllowed(r); err != nil {
		return err
	}
	id, err := runbookIdent(r)
	if err != nil {
		return err
	}
	return noContent(w, s.store.DeleteRunbook(r.Context(), id))
}

// applyRunbook fills a clean or service request from a runbook, as Ironic: the node must
// carry a trait that approves the runbook (its name before 1.112, one of its traits from
// 1.112 on), the request must not give steps as well, and the runbook's disable_ramdisk applies.
func (s *Server) applyRunbook(r *http.Request, ident string, verb ironwork.Verb, req *conductor.ProvisionRequest) error {
	ctx := r.Context()
	b, err := s.store.GetRunbook(ctx, ident)
	if err != nil {
		return err
	}
	n, err := s.loadNode(ctx, r.PathValue("ident"))
	if err != nil {
		return err
	}
	if versionOf(ctx) >= vRunbookTraits {
		if len(b.Traits) == 0 {
			return invalid("Runbook %s has no traits configured. Please ask an administrator to add traits to the runbook.", b.UUID)
		}
		if !slices.ContainsFunc(b.Traits, func(t string) bool { return slices.Contains(n.Traits, t) }) {
			sorted := slices.Sorted(slices.Values(b.Traits))
			return invalid("This runbook has not been approved for use on this node %s. The node does not have any of the runbook's traits %s. Please ask an administrator to add a matching trait to your node.",
				n.UUID, "['"+strings.Join(sorted, "', '")+"']")
		}
	} else if !slices.Contains(n.Traits, b.Name) {
		return invalid("This runbook has not been approved for use on this node %s. Please ask an administrator to add it to your node traits.", n.UUID)
	}
	steps := provisionSteps(req, verb.Required)
	if len(*steps) > 0 {
		return invalid("Please provide either \"%s\" or a runbook, but not both.", verb.Required)
	}
	ordered := slices.Clone(b.Steps)
	slices.SortStableFunc(ordered, func(x, y ironwork.RunbookStep) int { return x.Order - y.Order })
	for _, st := range ordered {
		*steps = append(*steps, conductor.StepRequest{Interface: string(st.Interface), Step: st.Step, Args: st.Args})
	}
	req.DisableRamdisk = req.DisableRamdisk || b.DisableRamdisk
	return nil
}

// runbookTraitsAllowed gates the traits sub-resource (1.112) as Ironic: 404 before it.
func runbookTraitsAllowed(r *http.Request) error {
	if versionOf(r.Context()) < vRunbookTraits {
		return ironwork.Errorf(ironwork.ENOTFOUND, "The resource could not be found.")
	}
	return nil
}

func (s *Server) getRunbookTraits(w http.ResponseWriter, r *http.Request) error {
	if err := runbookTraitsAllowed(r); err != nil {
		return err
	}
	b, err := s.loadRunbook(r)
	if err != nil {
		return err
	}
	return s.writeJSON(w, http.StatusOK, object{{"traits", traitList(b.Traits)}})
}

// putRunbookTraits replaces a runbook's traits with a body's list, or adds the one trait of
// the path (with no body); 204 either way, as Ironic.
func (s *Server) putRunbookTraits(w http.ResponseWriter, r *http.Request) error {
	if err := runbookTraitsAllowed(r); err != nil {
		return err
	}
	id, err := runbookIdent(r)
	if err != nil {
		return err
	}
	one := r.PathValue("trait")
	raw, err := readBody(r)
	if err != nil {
		return err
	}
	var list []string
	hasList := false
	if len(strings.TrimSpace(string(raw))) > 0 {
		doc, err := decodeChecked(raw)
		if err != nil {
			return err
		}
		m, ok := doc.(map[string]any)
		if !ok {
			return schemaError("traits", "%s is not of type 'object'", pyRepr(doc))
		}
		for k, v := range m {
			if k != "traits" {
				return schemaError("traits", "Additional properties are not allowed ('%s' was unexpected)", k)
			}
			items, ok := v.([]any)
			if !ok {
				return schemaError("traits", "%s is not of type 'array'", pyRepr(v))
			}
			hasList = true
			for _, it := range items {
				t, ok := it.(string)
				if !ok {
					return schemaError("traits", "%s is not of type 'string'", pyRepr(it))
				}
				if err := checkTrait(t); err != nil {
					return err
				}
				if !slices.Contains(list, t) {
					list = append(list, t)
				}
			}
		}
	}
	if (one != "") == hasList {
		return invalid("A single runbook trait may be added via PUT /v1/runbooks/<runbook identifier>/traits/<trait> with no body, or all runbook traits may be replaced via PUT /v1/runbooks/<runbook identifier>/traits with the list of traits specified in the request body.")
	}
	if one != "" {
		if err := checkTrait(one); err != nil {
			return err
		}
	}
	_, err = s.store.UpdateRunbook(r.Context(), id, func(b *ironwork.Runbook) error {
		if hasList {
			b.Traits = list
		} else if !slices.Contains(b.Traits, one) {
			b.Traits = append(b.Traits, one)
		}
		return nil
	})
	return noContent(w, err)
}

func (s *Server) deleteRunbookTrait(w http.ResponseWriter, r *http.Request) error {
	if err := runbookTraitsAllowed(r); err != nil {
		return err
	}
	id, err := runbookIdent(r)
	if err != nil {
		return err
	}
	trait := r.PathValue("trait")
	_, err = s.store.UpdateRunbook(r.Context(), id, func(b *ironwork.Runbook) error {
		i := slices.Index(b.Traits, trait)
		if i < 0 {
			return ironwork.Errorf(ironwork.ENOTFOUND, "Runbook %s doesn't have a trait %s", b.UUID, trait)
		}
		b.Traits = slices.Delete(b.Traits, i, i+1)
		return nil
	})
	return noContent(w, err)
}
