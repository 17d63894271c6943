package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/configdrive"
	"github.com/ironwork/ironwork/internal/shacrypt"
)

// Conductor routes the API's conductor operations to the conductor that manages a node: every
// change of provision or power state and every operation that talks to hardware goes through
// it, as conductor.Call(ctx, c, conductor.OpX, req). rpc.Router implements it.
type Conductor = conductor.Caller

func (s *Server) cond() (Conductor, error) {
	if s.opts.Conductor == nil {
		return nil, ironwork.Errorf(ironwork.EUNAVAILABLE, "No conductor is available to do this.")
	}
	return s.opts.Conductor, nil
}

// condNode returns the conductor and the UUID of the node in the request's path.
func (s *Server) condNode(r *http.Request) (Conductor, string, error) {
	c, err := s.cond()
	if err != nil {
		return nil, "", err
	}
	uuid, err := s.nodeIdent(r)
	return c, uuid, err
}

// callNode runs an operation that takes only the path's node, on the node's conductor.
func callNode[Resp any](s *Server, r *http.Request, op conductor.Op[conductor.NodeRef, Resp]) (Resp, error) {
	c, uuid, err := s.condNode(r)
	if err != nil {
		var none Resp
		return none, err
	}
	return conductor.Call(r.Context(), c, op, conductor.NodeRef{Node: uuid})
}

// doOnNode runs an action on the path's node, with the request build makes of its NodeRef,
// and answers 204.
func doOnNode[Req conductor.Request](s *Server, w http.ResponseWriter, r *http.Request, c Conductor,
	op conductor.Op[Req, conductor.None], build func(conductor.NodeRef) Req) error {
	uuid, err := s.nodeIdent(r)
	if err != nil {
		return err
	}
	return noContent(w, conductor.Do(r.Context(), c, op, build(conductor.NodeRef{Node: uuid})))
}

// condBody returns the conductor and the decoded JSON body (kind names it in errors) of a
// request that needs both.
func (s *Server) condBody(r *http.Request, kind string) (Conductor, map[string]any, error) {
	c, err := s.cond()
	if err != nil {
		return nil, nil, err
	}
	body, err := decodeBody(r, kind)
	return c, body, err
}

// nodeIdent checks the identifier in the path and returns the node's UUID.
func (s *Server) nodeIdent(r *http.Request) (string, error) {
	n, err := s.loadNode(r.Context(), r.PathValue("ident"))
	if err != nil {
		return "", err
	}
	return n.UUID, nil
}

// noContent answers 204 when err is nil, and returns err.
func noContent(w http.ResponseWriter, err error) error {
	if err == nil {
		w.WriteHeader(http.StatusNoContent)
	}
	return err
}

func accepted(w http.ResponseWriter, r *http.Request, s *Server, uuid string) error {
	w.Header().Set("Location", s.baseURL(r)+"/v1/nodes/"+uuid+"/states")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Server) provision(w http.ResponseWriter, r *http.Request) error {
	ver := versionOf(r.Context())
	c, body, err := s.condBody(r, "body")
	if err != nil {
		return err
	}
	var req conductor.ProvisionRequest
	var configDrive any
	runbook := ""
	given := map[string]bool{}
	for k, v := range body {
		if k == "target" {
			t, ok := v.(string)
			if !ok && v != nil {
				return invalid("Invalid target: %s is not a string.", pyRepr(v))
			}
			req.Target = t
			continue
		}
		f, ok := provisionField(k)
		if !ok {
			return schemaError("body", "Additional properties are not allowed ('%s' was unexpected)", k)
		}
		if ver < f.Since {
			return tooNew(f.Since)
		}
		if k == "configdrive" { // its type is checked by checkConfigDrive
			configDrive = v
		} else if k == "runbook" {
			if rb, ok := v.(string); ok {
				runbook = rb
			} else if v != nil {
				return invalid("Invalid runbook: %s is not a string.", pyRepr(v))
			}
		} else if err := setProvisionField(&req, k, v); err != nil {
			return err
		}
		given[k] = true
	}
	verb, ok := ironwork.LookupVerb(req.Target)
	if !ok {
		return invalid("\"%s\" is not a valid provision state target.", req.Target)
	}
	if verb.Since > ver {
		return notAcceptable("The requested action \"%s\" is not available in API version 1.%d (needs 1.%d).", req.Target, ver, verb.Since)
	}
	if given["disable_ramdisk"] && verb.Event == ironwork.EventService && ver < vServiceDisableRamdisk {
		return notAcceptable("disable_ramdisk is not acceptable in this API version")
	}
	if runbook != "" && verb.Uses("runbook") {
		if err := s.applyRunbook(r, runbook, verb, &req); err != nil {
			return err
		}
	}
	if p := provisionSteps(&req, verb.Required); verb.Required != "" && (p == nil || len(*p) == 0) {
		return invalid("\"%s\" is required when setting target provision state to %s", verb.Required, verb.Name)
	}
	for _, f := range ironwork.ProvisionFields() {
		if f.Exclusive && given[f.Name] && !verb.Uses(f.Name) {
			return invalid("\"%s\" is only valid when setting target provision state to %s", f.Name, strings.Join(ironwork.VerbsUsing(f.Name), ", "))
		}
	}
	if req.ConfigDrive, err = checkConfigDrive(req.Target, configDrive, ver); err != nil {
		return err
	}
	if req.Node, err = s.nodeIdent(r); err != nil {
		return err
	}
	// As Ironic: aborting an inspection (1.41) or a deploy wait (1.110) is not acceptable in
	// older versions.
	if verb.Event == ironwork.EventAbort && ver < vDeployWaitAbort {
		n, err := s.store.GetNode(r.Context(), req.Node)
		if err != nil {
			return err
		}
		if n.ProvisionState == ironwork.DeployWait || (n.ProvisionState == ironwork.InspectWait && ver < 41) {
			return notAcceptable("Request not acceptable.")
		}
	}
	// As Ironic: a rescue needs a password that is not only white space (white space within
	// one is allowed).
	if verb.Event == ironwork.EventRescue && strings.TrimSpace(req.RescuePassword) == "" {
		return invalid("A non-empty \"rescue_password\" is required when setting target provision state to %s", verb.Name)
	}
	// Only the hash of a rescue password leaves the API, to a local or a remote conductor.
	if err := req.HashRescuePassword(); err != nil {
		return err
	}
	if err := conductor.Do(r.Context(), c, conductor.OpProvision, req); err != nil {
		return err
	}
	return accepted(w, r, s, req.Node)
}

// provisionField returns the provision body field called name.
func provisionField(name string) (ironwork.ProvisionField, bool) {
	for _, f := range ironwork.ProvisionFields() {
		if f.Name == name {
			return f, true
		}
	}
	return ironwork.ProvisionField{}, false
}

// provisionSteps returns the list of steps a provision request holds in a steps field.
func provisionSteps(req *conductor.ProvisionRequest, field string) *[]conductor.StepRequest {
	switch field {
	case "clean_steps":
		return &req.CleanSteps
	case "deploy_steps":
		return &req.DeploySteps
	case "service_steps":
		return &req.ServiceSteps
	}
	return nil
}

// setProvisionField decodes a provision body field into the request.
func setProvisionField(req *conductor.ProvisionRequest, k string, v any) error {
	switch k {
	case "rescue_password":
		p, ok := v.(string)
		if !ok && v != nil {
			return invalid("Invalid rescue_password: it is not a string.")
		}
		if len(p) > shacrypt.MaxPassword {
			// Hashing costs every round the password's length: refused before any is done.
			return invalid("Invalid rescue_password: it is longer than %d bytes.", shacrypt.MaxPassword)
		}
		req.RescuePassword = p
	case "disable_ramdisk":
		if v == nil {
			return nil
		}
		b, err := asBool("body", v)
		if err != nil {
			return invalid("Invalid disable_ramdisk: %s is not a boolean.", pyRepr(v))
		}
		req.DisableRamdisk = b
	default:
		if v == nil {
			return nil
		}
		list, ok := v.([]any)
		if !ok {
			return invalid("%s must be a list of steps", k)
		}
		for _, st := range list {
			if _, ok := st.(map[string]any); !ok {
				return invalid("Invalid %s: the step %s is not an object.", k, pyRepr(st))
			}
		}
		steps, err := stepRequests(strings.TrimSuffix(k, "_steps"), normalizeJSON(map[string]any{"s": list})["s"].([]any))
		if err != nil {
			return err
		}
		*provisionSteps(req, k) = steps
	}
	return nil
}

// stepRequests reads the steps of a provision body's steps field (kind: clean, deploy or
// service). A key other than interface, step, args and priority is refused; an interface or
// step that is not a string is left empty, args that are not an object and a priority that is
// not a number are ignored, for the conductor to judge.
func stepRequests(kind string, list []any) ([]conductor.StepRequest, error) {
	out := make([]conductor.StepRequest, len(list))
	for i, st := range list {
		m := st.(map[string]any)
		for k := range m {
			if k != "interface" && k != "step" && k != "args" && k != "priority" {
				return nil, invalid("%s step %d has an unknown key %q", kind, i, k)
			}
		}
		r := &out[i]
		r.Interface, _ = m["interface"].(string)
		r.Step, _ = m["step"].(string)
		r.Args, _ = m["args"].(map[string]any)
		if p, ok := m["priority"].(float64); ok {
			n := int(p)
			r.Priority = &n
		}
	}
	return out, nil
}

func (s *Server) power(w http.ResponseWriter, r *http.Request) error {
	ver := versionOf(r.Context())
	c, body, err := s.condBody(r, "body")
	if err != nil {
		return err
	}
	target, ok := body["target"].(string)
	if !ok && body["target"] != nil {
		return invalid("Invalid target: %s is not a string.", pyRepr(body["target"]))
	}
	var timeout time.Duration
	for k, v := range body {
		switch k {
		case "target":
		case "timeout":
			if ver < 27 {
				return tooNew(27)
			}
			n, ok := v.(interface{ Int64() (int64, error) })
			secs, err := int64(0), error(nil)
			if ok {
				secs, err = n.Int64()
			}
			if !ok || err != nil || secs < 1 {
				return invalid("Invalid timeout value %v. The timeout must be a positive integer.", v)
			}
			timeout = time.Duration(secs) * time.Second
		default:
			return schemaError("body", "Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	switch ironwork.PowerState(target) {
	case ironwork.PowerOn, ironwork.PowerOff, ironwork.Rebooting:
	case ironwork.SoftPowerOff, ironwork.SoftRebooting:
		if ver < 27 {
			return tooNew(27)
		}
	default:
		return invalid("Invalid power state target %q: use power on, power off, rebooting, soft power off or soft rebooting.", target)
	}
	uuid, err := s.nodeIdent(r)
	if err != nil {
		return err
	}
	req := conductor.SetPowerRequest{NodeRef: conductor.NodeRef{Node: uuid}, Target: ironwork.PowerState(target), Timeout: timeout}
	if err := conductor.Do(r.Context(), c, conductor.OpSetPower, req); err != nil {
		return err
	}
	return accepted(w, r, s, uuid)
}

func (s *Server) maintenance(on bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, err := s.cond()
		if err != nil {
			return err
		}
		reason := ""
		if on && r.ContentLength != 0 {
			body, err := decodeBody(r, "body")
			if err != nil {
				return err
			}
			for k, v := range body {
				if k != "reason" {
					return schemaError("body", "Additional properties are not allowed ('%s' was unexpected)", k)
				}
				if v != nil {
					s, ok := v.(string)
					if !ok {
						return schemaError("body", "%s is not of type 'string'", pyRepr(v))
					}
					reason = s
				}
			}
		}
		uuid, err := s.nodeIdent(r)
		if err != nil {
			return err
		}
		req := conductor.SetMaintenanceRequest{NodeRef: conductor.NodeRef{Node: uuid}, On: on, Reason: reason}
		if err := conductor.Do(r.Context(), c, conductor.OpSetMaintenance, req); err != nil {
			return err
		}
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
}

func (s *Server) validate(w http.ResponseWriter, r *http.Request) error {
	res, err := callNode(s, r, conductor.OpValidate)
	if err != nil {
		return err
	}
	ver := versionOf(r.Context())
	out := object{}
	for _, k := range ironwork.InterfaceKinds {
		if since := interfaceSince[k]; since > ver && since > 31 {
			continue
		}
		v, ok := res[k]
		if !ok {
			continue // not validated (the vendor interface)
		}
		var reason any
		if v.Reason != "" {
			reason = v.Reason
		}
		out = append(out, kv{string(k), object{{"result", v.Result}, {"reason", reason}}})
	}
	return s.writeJSON(w, http.StatusOK, out)
}

func (s *Server) getBootDevice(w http.ResponseWriter, r *http.Request) error {
	d, err := callNode(s, r, conductor.OpBootDevice)
	if err != nil {
		return err
	}
	return s.writeJSON(w, http.StatusOK, object{{"boot_device", d.Device}, {"persistent", d.Persistent}})
}

func (s *Server) supportedBootDevices(w http.ResponseWriter, r *http.Request) error {
	ds, err := callNode(s, r, conductor.OpSupportedBootDevices)
	if err != nil {
		return err
	}
	return s.writeJSON(w, http.StatusOK, object{{"supported_boot_devices", ds}})
}

func (s *Server) setBootDevice(w http.ResponseWriter, r *http.Request) error {
	c, body, err := s.condBody(r, "body")
	if err != nil {
		return err
	}
	var dev conductor.BootDevice
	for k, v := range body {
		switch k {
		case "boot_device":
			dev.Device, _ = v.(string)
		case "persistent":
			b, err := asBool("body", v)
			if err != nil {
				return err
			}
			dev.Persistent = b
		default:
			return schemaError("body", "Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	if dev.Device == "" {
		return invalid("Missing mandatory parameter: boot_device")
	}
	return doOnNode(s, w, r, c, conductor.OpSetBootDevice, func(ref conductor.NodeRef) conductor.SetBootDeviceRequest {
		return conductor.SetBootDeviceRequest{NodeRef: ref, Device: dev}
	})
}

func (s *Server) injectNMI(w http.ResponseWriter, r *http.Request) error {
	if versionOf(r.Context()) < 29 {
		return ironwork.Errorf(ironwork.ENOTFOUND, "The resource could not be found.")
	}
	_, err := callNode(s, r, conductor.OpInjectNMI)
	return noContent(w, err)
}

func (s *Server) targetBody(r *http.Request, since int) (any, string, error) {
	if versionOf(r.Context()) < since {
		return nil, "", ironwork.Errorf(ironwork.ENOTFOUND, "The resource could not be found.")
	}
	body, err := decodeBody(r, "body")
	if err != nil {
		return nil, "", err
	}
	for k := range body {
		if k != "target" {
			return nil, "", schemaError("body", "Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	uuid, err := s.nodeIdent(r)
	return body["target"], uuid, err
}

// targetAction serves a PUT of {"target": ...} (from 1.76): run checks the target and runs the
// operation on the node's conductor.
func (s *Server) targetAction(run func(ctx context.Context, c Conductor, ref conductor.NodeRef, target any) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, err := s.cond()
		if err != nil {
			return err
		}
		target, uuid, err := s.targetBody(r, 76)
		if err != nil {
			return err
		}
		if err := run(r.Context(), c, conductor.NodeRef{Node: uuid}, target); err != nil {
			return err
		}
		return accepted(w, r, s, uuid)
	}
}

func setBootMode(ctx context.Context, c Conductor, ref conductor.NodeRef, target any) error {
	mode, _ := target.(string)
	return conductor.Do(ctx, c, conductor.OpSetBootMode, conductor.SetBootModeRequest{NodeRef: ref, Mode: mode})
}

func setSecureBoot(ctx context.Context, c Conductor, ref conductor.NodeRef, target any) error {
	on, ok := target.(bool)
	if !ok {
		return invalid("Invalid secure boot target %v: use true or false.", target)
	}
	return conductor.Do(ctx, c, conductor.OpSetSecureBoot, conductor.SetSecureBootRequest{NodeRef: ref, On: on})
}

func (s *Server) renderEvent(r *http.Request, n *ironwork.Node, e *ironwork.NodeHistoryEvent, detail bool) object {
	out := object{{"uuid", e.UUID}, {"created_at", isoTime(e.CreatedAt)}, {"severity", e.Severity}, {"event", e.Event}}
	if detail {
		out = append(out, kv{"event_type", e.EventType}, kv{"conductor", optStr(e.Conductor)}, kv{"user", optStr(e.User)})
		ver := versionOf(r.Context())
		if ver >= vHistoryProject {
			out = append(out, kv{"project", optStr(e.Project)})
		}
		if ver >= vHistoryStates {
			var d any
			if e.Duration != nil {
				d = *e.Duration
			}
			out = append(out, kv{"state", optStr(e.State)}, kv{"target_provision_state", optStr(e.TargetProvisionState)}, kv{"duration_seconds", d})
		}
	}
	return append(out, kv{"links", links(s.baseURL(r), "nodes/"+n.UUID+"/history/"+e.UUID)})
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) error {
	if versionOf(r.Context()) < 78 {
		return ironwork.Errorf(ironwork.ENOTFOUND, "The resource could not be found.")
	}
	n, err := s.loadNode(r.Context(), r.PathValue("ident"))
	if err != nil {
		return err
	}
	detail := false
	if v := r.URL.Query().Get("detail"); v != "" {
		if detail, err = parseBool("detail", v); err != nil {
			return err
		}
	}
	events, err := s.store.NodeHistory(r.Context(), n.ID)
	if err != nil {
		return err
	}
	out := make([]object, len(events))
	for i, e := range events {
		out[i] = s.renderEvent(r, n, e, detail)
	}
	return s.writeJSON(w, http.StatusOK, object{{"history", out}})
}

func (s *Server) historyEvent(w http.ResponseWriter, r *http.Request) error {
	if versionOf(r.Context()) < 78 {
		return ironwork.Errorf(ironwork.ENOTFOUND, "The resource could not be found.")
	}
	n, err := s.loadNode(r.Context(), r.PathValue("ident"))
	if err != nil {
		return err
	}
	events, err := s.store.NodeHistory(r.Context(), n.ID)
	if err != nil {
		return err
	}
	for _, e := range events {
		if e.UUID == r.PathValue("event") {
			return s.writeJSON(w, http.StatusOK, s.renderEvent(r, n, e, true))
		}
	}
	return ironwork.Errorf(ironwork.ENOTFOUND, "Node history record %s could not be found.", r.PathValue("event"))
}

// b64Alphabet is what a base64 config drive may hold, with the white space base64 values
// commonly carry.
const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n\r\t "

// checkConfigDrive refuses a config drive as Ironic does: only with target active (or
// deploy, its alias), and rebuild from 1.35; the object form only from 1.56, its
// vendor_data only from 1.59; a string must be a URL or base64.
func checkConfigDrive(target string, cd any, ver int) (*conductor.ConfigDrive, error) {
	switch v := cd.(type) {
	case nil:
		return nil, nil
	case string:
		if v == "" {
			return &conductor.ConfigDrive{}, nil
		}
	case map[string]any:
		if len(v) == 0 {
			return &conductor.ConfigDrive{Dict: v}, nil
		}
	}
	allowed := []string{"active"}
	if ver >= 35 {
		allowed = append(allowed, "rebuild")
	}
	if !slices.Contains(allowed, target) && target != "deploy" {
		return nil, invalid("Adding a config drive is only supported when setting provision state to %s", strings.Join(allowed, ", "))
	}
	switch v := cd.(type) {
	case map[string]any:
		if _, err := configdrive.Parse(v); err != nil {
			return nil, invalid("Invalid configdrive format: %v", err)
		}
		if ver < 56 {
			return nil, invalid("Providing a JSON object for configdrive is only supported starting with API version 1.56")
		}
		if _, ok := v["vendor_data"]; ok && ver < 59 {
			return nil, invalid("Providing vendor_data in configdrive is only supported starting with API version 1.59")
		}
		return &conductor.ConfigDrive{Dict: v}, nil
	case string:
		if !strings.Contains(v, "://") && strings.Trim(v, b64Alphabet) != "" {
			return nil, invalid("Invalid configdrive format: it is neither a JSON, nor a URL, nor a base64 string")
		}
		return &conductor.ConfigDrive{Encoded: v}, nil
	}
	return nil, invalid("Invalid configdrive format: %v is not of type 'object', 'string', 'null'", cd)
}
