package redfish

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// BIOS is the redfish bios interface (Ironic's): it reads the System's Bios resource and the
// attribute registry it names, and offers the apply_configuration and factory_reset steps
// for cleaning, deployment and servicing. Both steps talk only to the BMC: pending settings
// go to the Bios' Settings resource (or Bios.ResetBios), the node reboots so that the BIOS
// applies them, and the step waits on the BMC: the conductor's BMC poll re-reads the Bios
// (PollBMC) until every setting shows, or fails the step with what the BMC reports after
// ApplyTimeout. The node's power state is restored afterwards.
type BIOS struct {
	Interface
	// ApplyTimeout bounds the wait for settings to show after the reboot (default 10 min).
	ApplyTimeout time.Duration
}

var (
	_ conductor.BIOSReader   = BIOS{}
	_ conductor.StepProvider = BIOS{}
	_ conductor.StepRunner   = BIOS{}
	_ conductor.Validator    = BIOS{}
)

// biosDoc is what the interface reads of a Bios resource.
type biosDoc struct {
	ODataID                    string `json:"@odata.id"`
	AttributeRegistry          string
	Attributes                 map[string]any
	ResetBiosToDefaultsPending *bool
	Settings                   struct {
		SettingsObject struct {
			ODataID string `json:"@odata.id"`
		}
		Messages []struct {
			MessageID         string `json:"MessageId"`
			Message           string
			RelatedProperties []string
		}
	} `json:"@Redfish.Settings"`
	Actions struct {
		ResetBios struct {
			Target string `json:"target"`
		} `json:"#Bios.ResetBios"`
	}
}

// registryAttr is one attribute of an AttributeRegistry.
type registryAttr struct {
	AttributeName          string
	Type                   string
	Value                  []struct{ ValueName string }
	ReadOnly               *bool
	ResetRequired          *bool
	IsSystemUniqueProperty *bool
	LowerBound             *int64
	UpperBound             *int64
	MinLength              *int64
	MaxLength              *int64
}

// getJSON reads a resource of the BMC into v.
func getJSON(c schemas.Client, path string, v any) error {
	resp, err := c.Get(path)
	if err != nil {
		return fmt.Errorf("get %s: %w", path, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// bios reads the System's Bios resource.
func (d BIOS) bios(sys *schemas.ComputerSystem) (biosDoc, error) {
	var links struct {
		Bios struct {
			ODataID string `json:"@odata.id"`
		}
	}
	var doc biosDoc
	if err := getJSON(sys.GetClient(), sys.ODataID, &links); err != nil {
		return doc, err
	}
	if links.Bios.ODataID == "" {
		return doc, ironwork.Errorf(ironwork.EINVALID, "the Redfish system %s has no Bios resource", sys.ODataID)
	}
	if err := getJSON(sys.GetClient(), links.Bios.ODataID, &doc); err != nil {
		return doc, err
	}
	if doc.ODataID == "" {
		doc.ODataID = links.Bios.ODataID
	}
	return doc, nil
}

// registry finds the attribute registry the Bios names through the service's Registries (by
// the file's Id or its Registry), in English or the first language offered. A BMC that
// serves none gives no registry: the settings are then shown without registry fields.
func (d BIOS) registry(c schemas.Client, name string) (map[string]registryAttr, error) {
	if name == "" {
		return nil, nil
	}
	var root struct {
		Registries struct {
			ODataID string `json:"@odata.id"`
		}
	}
	if err := getJSON(c, "/redfish/v1/", &root); err != nil || root.Registries.ODataID == "" {
		return nil, err
	}
	var coll struct {
		Members []struct {
			ODataID string `json:"@odata.id"`
		}
	}
	if err := getJSON(c, root.Registries.ODataID, &coll); err != nil {
		return nil, err
	}
	for _, m := range coll.Members {
		var file struct {
			ID       string `json:"Id"`
			Registry string
			Location []struct {
				Language string
				URI      string `json:"Uri"`
			}
		}
		if err := getJSON(c, m.ODataID, &file); err != nil {
			return nil, err
		}
		if file.ID != name && file.Registry != name {
			continue
		}
		uri := ""
		for _, l := range file.Location {
			if uri == "" || strings.EqualFold(l.Language, "en") {
				uri = l.URI
			}
		}
		if uri == "" {
			return nil, nil
		}
		var reg struct {
			RegistryEntries struct {
				Attributes []registryAttr
			}
		}
		if err := getJSON(c, uri, &reg); err != nil {
			return nil, err
		}
		out := map[string]registryAttr{}
		for _, a := range reg.RegistryEntries.Attributes {
			out[a.AttributeName] = a
		}
		return out, nil
	}
	return nil, nil
}

// settings joins the Bios' attributes with the registry's description of them.
func settings(doc biosDoc, reg map[string]registryAttr) []ironwork.BIOSSetting {
	var out []ironwork.BIOSSetting
	for _, name := range slices.Sorted(maps.Keys(doc.Attributes)) {
		s := ironwork.BIOSSetting{Name: name, Value: conductor.BIOSValueString(doc.Attributes[name])}
		if a, ok := reg[name]; ok {
			typ := a.Type
			s.AttributeType = &typ
			for _, v := range a.Value {
				s.AllowableValues = append(s.AllowableValues, v.ValueName)
			}
			s.LowerBound, s.UpperBound, s.MinLength, s.MaxLength = a.LowerBound, a.UpperBound, a.MinLength, a.MaxLength
			s.ReadOnly, s.ResetRequired, s.Unique = a.ReadOnly, a.ResetRequired, a.IsSystemUniqueProperty
		}
		out = append(out, s)
	}
	return out
}

// BIOSSettings implements conductor.BIOSReader.
func (d BIOS) BIOSSettings(ctx context.Context, t *conductor.Task) ([]ironwork.BIOSSetting, error) {
	sys, done, err := d.system(ctx, t)
	if err != nil {
		return nil, err
	}
	defer done()
	doc, err := d.bios(sys)
	if err != nil {
		return nil, err
	}
	reg, err := d.registry(sys.GetClient(), doc.AttributeRegistry)
	if err != nil {
		return nil, fmt.Errorf("read BIOS attribute registry %s: %w", doc.AttributeRegistry, err)
	}
	return settings(doc, reg), nil
}

// Steps implements conductor.StepProvider: both steps for cleaning, deployment and
// servicing, never automatic (priority 0), as Ironic's.
func (BIOS) Steps(kind conductor.StepKind) []conductor.Step {
	return []conductor.Step{{Name: conductor.StepApplyBIOS}, {Name: conductor.StepFactoryBIOS}}
}

// typed converts a requested value to the JSON type of its registry attribute: BMCs refuse
// "3" for an Integer attribute, and operators (Metal3 among them) send strings.
func typed(v any, a registryAttr, known bool) any {
	s := conductor.BIOSValueString(v)
	if !known || s == nil {
		return v
	}
	switch a.Type {
	case "Integer":
		if n, err := strconv.ParseInt(*s, 10, 64); err == nil {
			return n
		}
	case "Boolean":
		if b, err := strconv.ParseBool(*s); err == nil {
			return b
		}
	case "Enumeration", "String", "Password":
		return *s
	}
	return v
}

// RunStep implements conductor.StepRunner: the settings (or the reset) go to the BMC, the
// node reboots, and the step waits on the BMC: the conductor's BMC poll re-reads the Bios
// (PollBMC) until it shows them.
func (d BIOS) RunStep(ctx context.Context, t *conductor.Task, step conductor.Step) (bool, error) {
	switch step.Name {
	case conductor.StepApplyBIOS:
		want, err := conductor.BIOSSettingsArg(step.Args)
		if err != nil {
			return false, err
		}
		return d.apply(ctx, t, want)
	case conductor.StepFactoryBIOS:
		return d.factoryReset(ctx, t)
	}
	return false, fmt.Errorf("the redfish bios interface has no step %q", step.Name)
}

// Keys of the bios steps' BMC wait data.
const (
	biosExpect = "expect" // apply_configuration: the values expected, by name
	biosReset  = "reset"  // factory_reset: no reset may be pending
	biosWasOn  = "was_on" // the node was on before the reboot
)

// apply checks the settings against the BMC's registry, stores them as pending, reboots and
// waits on the BMC.
func (d BIOS) apply(ctx context.Context, t *conductor.Task, want []conductor.BIOSValue) (bool, error) {
	sys, done, err := d.system(ctx, t)
	if err != nil {
		return false, err
	}
	defer done()
	doc, err := d.bios(sys)
	if err != nil {
		return false, err
	}
	reg, err := d.registry(sys.GetClient(), doc.AttributeRegistry)
	if err != nil {
		return false, fmt.Errorf("read BIOS attribute registry %s: %w", doc.AttributeRegistry, err)
	}
	if err := conductor.CheckBIOSSettings(settings(doc, reg), want); err != nil {
		return false, err
	}
	attrs := map[string]any{}
	expect := map[string]any{}
	for _, w := range want {
		a, ok := reg[w.Name]
		attrs[w.Name] = typed(w.Value, a, ok)
		expect[w.Name] = *conductor.BIOSValueString(attrs[w.Name])
	}
	target := doc.Settings.SettingsObject.ODataID
	if target == "" {
		target = doc.ODataID
	}
	resp, err := sys.GetClient().Patch(target, map[string]any{"Attributes": attrs})
	if err != nil {
		return false, fmt.Errorf("set pending BIOS settings at %s: %w", target, err)
	}
	resp.Body.Close()
	t.Log.Info("bios settings pending", "settings", slices.Sorted(maps.Keys(attrs)))
	return d.reboot(ctx, t, sys, map[string]any{biosExpect: expect})
}

// factoryReset asks the BIOS for its defaults, reboots and waits on the BMC.
func (d BIOS) factoryReset(ctx context.Context, t *conductor.Task) (bool, error) {
	sys, done, err := d.system(ctx, t)
	if err != nil {
		return false, err
	}
	defer done()
	doc, err := d.bios(sys)
	if err != nil {
		return false, err
	}
	target := doc.Actions.ResetBios.Target
	if target == "" {
		return false, ironwork.Errorf(ironwork.EINVALID, "the Redfish Bios %s offers no Bios.ResetBios action", doc.ODataID)
	}
	resp, err := sys.GetClient().Post(target, map[string]any{})
	if err != nil {
		return false, fmt.Errorf("reset the BIOS to its defaults: %w", err)
	}
	resp.Body.Close()
	return d.reboot(ctx, t, sys, map[string]any{biosReset: true})
}

// reboot restarts the node so that its BIOS applies what is pending (a node that was off is
// powered on, and off again at the end), and records the BMC wait with data.
func (d BIOS) reboot(ctx context.Context, t *conductor.Task, sys *schemas.ComputerSystem, data map[string]any) (bool, error) {
	// The BMC's power state, not the recorded one: a node recorded off but running would
	// only be "powered on" and never apply what is pending.
	wasOn := t.Node.PowerState == ironwork.PowerOn
	if sys, err := schemas.GetComputerSystem(sys.GetClient(), sys.ODataID); err == nil {
		if st, err := powerOf(sys.PowerState); err == nil {
			wasOn = st == ironwork.PowerOn
		}
	}
	target := ironwork.PowerOn
	if wasOn {
		target = ironwork.Rebooting
	}
	if err := t.SetPower(ctx, target); err != nil {
		return false, fmt.Errorf("reboot to apply the BIOS settings: %w", err)
	}
	data[biosWasOn] = wasOn
	return true, t.WaitForBMC(ctx, conductor.BMCWait{Data: data, Deadline: time.Now().Add(d.applyTimeout())})
}

func (d BIOS) applyTimeout() time.Duration {
	if d.ApplyTimeout > 0 {
		return d.ApplyTimeout
	}
	return 10 * time.Minute
}

var _ conductor.BMCPoller = BIOS{}

// PollBMC implements conductor.BMCPoller: it re-reads the Bios; when it shows what the step
// asked (or when the deadline passed) a node that was off is powered off again. Past the
// deadline the step fails with what is wrong and the BMC's messages.
func (d BIOS) PollBMC(ctx context.Context, t *conductor.Task, step conductor.Step, w *conductor.BMCWait) (bool, error) {
	wasOn, _ := w.Data[biosWasOn].(bool)
	expect, _ := w.Data[biosExpect].(map[string]any)
	reset, _ := w.Data[biosReset].(bool)
	sys, done, err := d.system(ctx, t)
	if err != nil {
		return false, err
	}
	defer done()
	var problems []string
	doc, err := d.bios(sys)
	switch {
	case err != nil:
		problems = []string{err.Error()}
	case reset && doc.ResetBiosToDefaultsPending != nil && *doc.ResetBiosToDefaultsPending:
		problems = []string{"the reset to defaults is still pending"}
	default:
		for _, name := range slices.Sorted(maps.Keys(expect)) {
			want := fmt.Sprint(expect[name])
			got := conductor.BIOSValueString(doc.Attributes[name])
			if got == nil || *got != want {
				shown := "absent"
				if got != nil {
					shown = *got
				}
				problems = append(problems, fmt.Sprintf("%s is %s, not %s", name, shown, want))
			}
		}
	}
	if len(problems) > 0 && err == nil {
		for _, m := range doc.Settings.Messages {
			if m.Message != "" || m.MessageID != "" {
				problems = append(problems, fmt.Sprintf("the BMC says %s %s %s", m.MessageID, m.Message, strings.Join(m.RelatedProperties, ",")))
			}
		}
	}
	if len(problems) > 0 && time.Now().Before(w.Deadline) {
		return false, nil
	}
	var failure error
	if len(problems) > 0 {
		failure = fmt.Errorf("the BIOS settings were not applied within %s: %s",
			w.Deadline.Sub(w.Started).Round(time.Second), strings.Join(problems, "; "))
	}
	if !wasOn {
		if perr := t.SetPower(ctx, ironwork.PowerOff); perr != nil {
			if failure != nil {
				return false, fmt.Errorf("%w (and the power off after it: %w)", failure, perr)
			}
			return false, fmt.Errorf("power off after applying the BIOS settings: %w", perr)
		}
	}
	return failure == nil, failure
}
