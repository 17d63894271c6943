package vbmc

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
)

// The machines' BIOS, as a Redfish BMC serves it: Systems/{id}/Bios with the current
// Attributes, its Settings resource (a PATCH stores pending attributes, applied at the next
// power-on or reset, as a real BIOS applies them during POST), the Bios.ResetBios action (the
// registry's defaults, also at the next power-on) and an AttributeRegistry under
// /redfish/v1/Registries that says each attribute's type, allowed values, bounds, and whether
// it is read-only, needs a reset or is unique to the system.

// BIOSRegistryID is the name of the BIOS attribute registry the machines' Bios resources name.
const BIOSRegistryID = "BiosAttributeRegistryVBMC.v1_0_0"

// biosAttribute is one entry of the attribute registry.
type biosAttribute struct {
	Name          string
	Type          string // Enumeration, Integer, String, Boolean
	Values        []string
	Default       any
	ReadOnly      bool
	ResetRequired bool
	Unique        bool
	Lower, Upper  int // Integer bounds
	MinLen        int // String lengths
	MaxLen        int
}

// biosRegistry lists the attributes every machine's BIOS has.
func biosRegistry() []biosAttribute {
	onOff := []string{"Enabled", "Disabled"}
	return []biosAttribute{
		{Name: "AdminPhone", Type: "String", Default: "", MinLen: 0, MaxLen: 32},
		{Name: "BootMode", Type: "Enumeration", Values: []string{"Uefi", "Bios"}, Default: "Uefi", ResetRequired: true},
		{Name: "EmbeddedSata", Type: "Enumeration", Values: []string{"Ahci", "Raid"}, Default: "Ahci", ResetRequired: true},
		{Name: "NetworkBootRetries", Type: "Integer", Default: 3, Lower: 0, Upper: 10, ResetRequired: true},
		{Name: "ProcHyperthreading", Type: "Enumeration", Values: onOff, Default: "Enabled", ResetRequired: true},
		{Name: "ProcTurboMode", Type: "Enumeration", Values: onOff, Default: "Enabled", ResetRequired: true},
		{Name: "ProcVirtualization", Type: "Enumeration", Values: onOff, Default: "Enabled", ResetRequired: true},
		{Name: "SerialNumber", Type: "String", ReadOnly: true, Unique: true, MaxLen: 64},
		{Name: "SriovGlobalEnable", Type: "Boolean", Default: false, ResetRequired: true},
	}
}

// biosState is a machine's BIOS: the current attributes, those pending for the next boot and
// whether a reset to defaults is pending.
type biosState struct {
	mu           sync.Mutex
	current      map[string]any
	pending      map[string]any
	resetPending bool
	name         string
	uefi         bool
}

func newBIOS(name string, uefi bool) *biosState {
	b := &biosState{name: name, uefi: uefi, pending: map[string]any{}}
	b.current = b.defaults()
	return b
}

// defaults are the registry's default values, with the machine's own boot mode and serial.
func (b *biosState) defaults() map[string]any {
	out := map[string]any{}
	for _, a := range biosRegistry() {
		out[a.Name] = a.Default
	}
	out["BootMode"] = "Bios"
	if b.uefi {
		out["BootMode"] = "Uefi"
	}
	out["SerialNumber"] = "VBMC-" + b.name
	return out
}

// apply is what POST does with the pending work: a reset to defaults, then pending attributes.
func (b *biosState) apply() (changed []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.resetPending {
		b.current = b.defaults()
		b.resetPending = false
		changed = append(changed, "(defaults)")
	}
	for k, v := range b.pending {
		b.current[k] = v
		changed = append(changed, k)
	}
	b.pending = map[string]any{}
	sort.Strings(changed)
	return changed
}

// Attributes returns a copy of the machine's current BIOS attributes.
func (m *Machine) Attributes() map[string]any {
	m.bios.mu.Lock()
	defer m.bios.mu.Unlock()
	return maps.Clone(m.bios.current)
}

// PendingAttributes returns a copy of the attributes applied at the next power-on.
func (m *Machine) PendingAttributes() map[string]any {
	m.bios.mu.Lock()
	defer m.bios.mu.Unlock()
	return maps.Clone(m.bios.pending)
}

// checkAttribute says why value cannot be set on attribute name, in Redfish's Base message
// terms; "" means it can.
func checkAttribute(name string, value any) (msgID, msg string) {
	i := slices.IndexFunc(biosRegistry(), func(a biosAttribute) bool { return a.Name == name })
	if i < 0 {
		return "PropertyUnknown", fmt.Sprintf("The property %s is not in the list of valid properties for the resource.", name)
	}
	a := biosRegistry()[i]
	if a.ReadOnly {
		return "PropertyNotWritable", fmt.Sprintf("The property %s is a read only property and cannot be assigned a value.", name)
	}
	typeErr := func() (string, string) {
		return "PropertyValueTypeError", fmt.Sprintf("The value %v for the property %s is of a different type than the property can accept (%s).", value, name, a.Type)
	}
	switch a.Type {
	case "Enumeration":
		s, ok := value.(string)
		if !ok {
			return typeErr()
		}
		if !slices.Contains(a.Values, s) {
			return "PropertyValueNotInList", fmt.Sprintf("The value %s for the property %s is not in the list of acceptable values (%s).", s, name, strings.Join(a.Values, ", "))
		}
	case "Integer":
		f, ok := value.(float64)
		if !ok || f != float64(int64(f)) {
			return typeErr()
		}
		if int(f) < a.Lower || int(f) > a.Upper {
			return "PropertyValueOutOfRange", fmt.Sprintf("The value %d for the property %s is not in the supported range of acceptable values (%d to %d).", int64(f), name, a.Lower, a.Upper)
		}
	case "String":
		s, ok := value.(string)
		if !ok {
			return typeErr()
		}
		if len(s) < a.MinLen || len(s) > a.MaxLen {
			return "PropertyValueFormatError", fmt.Sprintf("The value %q for the property %s is not %d to %d characters long.", s, name, a.MinLen, a.MaxLen)
		}
	case "Boolean":
		if _, ok := value.(bool); !ok {
			return typeErr()
		}
	}
	return "", ""
}

// normalize turns JSON's float64 into the int the registry's Integer attributes hold.
func normalize(v any) any {
	if f, ok := v.(float64); ok {
		return int(f)
	}
	return v
}

func registryEntry(a biosAttribute) map[string]any {
	e := map[string]any{"AttributeName": a.Name, "DisplayName": a.Name, "Type": a.Type, "ReadOnly": a.ReadOnly,
		"ResetRequired": a.ResetRequired, "IsSystemUniqueProperty": a.Unique}
	if a.Default != nil {
		e["DefaultValue"] = a.Default
	}
	switch a.Type {
	case "Enumeration":
		vals := make([]map[string]string, len(a.Values))
		for i, v := range a.Values {
			vals[i] = map[string]string{"ValueName": v, "ValueDisplayName": v}
		}
		e["Value"] = vals
	case "Integer":
		e["LowerBound"], e["UpperBound"], e["ScalarIncrement"] = a.Lower, a.Upper, 1
	case "String":
		e["MinLength"], e["MaxLength"] = a.MinLen, a.MaxLen
	}
	return e
}

// serveRegistries answers GET of /redfish/v1/Registries, the BIOS registry's file and the
// registry itself.
func (v *VBMC) serveRegistries(w http.ResponseWriter, r *http.Request, rest string) {
	if r.Method != http.MethodGet {
		redfishError(w, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
		return
	}
	base := "/redfish/v1/Registries"
	file := base + "/" + BIOSRegistryID
	switch rest {
	case "":
		writeJSON(w, http.StatusOK, collection(base, "MessageRegistryFile", []string{BIOSRegistryID}))
	case "/" + BIOSRegistryID:
		writeJSON(w, http.StatusOK, map[string]any{"@odata.id": file, "@odata.type": "#MessageRegistryFile.v1_1_0.MessageRegistryFile",
			"Id": BIOSRegistryID, "Name": "BIOS Attribute Registry File", "Registry": BIOSRegistryID, "Languages": []string{"en"},
			"Location": []map[string]string{{"Language": "en", "Uri": file + "/Registry"}}})
	case "/" + BIOSRegistryID + "/Registry":
		var entries []map[string]any
		for _, a := range biosRegistry() {
			entries = append(entries, registryEntry(a))
		}
		writeJSON(w, http.StatusOK, map[string]any{"@odata.id": file + "/Registry", "@odata.type": "#AttributeRegistry.v1_3_0.AttributeRegistry",
			"Id": BIOSRegistryID, "Name": "Ironwork virtual BIOS attribute registry", "Language": "en", "OwningEntity": "Ironwork",
			"RegistryVersion": "1.0.0", "SupportedSystems": []map[string]string{{"ProductName": "Ironwork virtual machine"}},
			"RegistryEntries": map[string]any{"Attributes": entries}})
	default:
		redfishError(w, http.StatusNotFound, "no resource at "+r.URL.Path)
	}
}

// serveBIOS answers the Bios resources of a machine: sub is "Bios", "Bios/Settings" or
// "Bios/Actions/Bios.ResetBios".
func (v *VBMC) serveBIOS(w http.ResponseWriter, r *http.Request, m *Machine, sub string) {
	path := "/redfish/v1/Systems/" + m.Name + "/Bios"
	b := m.bios
	switch {
	case sub == "Bios" && r.Method == http.MethodGet:
		b.mu.Lock()
		doc := map[string]any{"@odata.id": path, "@odata.type": "#Bios.v1_2_0.Bios", "Id": "Bios",
			"Name": "BIOS Configuration Current Settings", "AttributeRegistry": BIOSRegistryID,
			"Attributes": maps.Clone(b.current), "ResetBiosToDefaultsPending": b.resetPending,
			"@Redfish.Settings": map[string]any{"@odata.type": "#Settings.v1_3_5.Settings",
				"SettingsObject":            map[string]any{"@odata.id": path + "/Settings"},
				"SupportedApplyTimes":       []string{"OnReset"},
				"MaintenanceWindowResource": map[string]any{"@odata.id": "/redfish/v1/Systems/" + m.Name}},
			"Actions": map[string]any{"#Bios.ResetBios": map[string]any{"target": path + "/Actions/Bios.ResetBios"}}}
		b.mu.Unlock()
		writeJSON(w, http.StatusOK, doc)
	case sub == "Bios/Settings" && r.Method == http.MethodGet:
		b.mu.Lock()
		attrs := maps.Clone(b.current)
		maps.Copy(attrs, b.pending)
		b.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"@odata.id": path + "/Settings", "@odata.type": "#Bios.v1_2_0.Bios", "Id": "Settings",
			"Name": "BIOS Configuration Pending Settings", "AttributeRegistry": BIOSRegistryID, "Attributes": attrs})
	case sub == "Bios/Settings" && r.Method == http.MethodPatch:
		var body struct {
			Attributes map[string]any
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil {
			redfishError(w, http.StatusBadRequest, "malformed JSON: "+err.Error())
			return
		}
		if len(body.Attributes) == 0 {
			redfishError(w, http.StatusBadRequest, "the PATCH names no Attributes")
			return
		}
		// Every attribute is checked before any is stored: a refused PATCH changes nothing.
		names := slices.Sorted(maps.Keys(body.Attributes))
		var msgs []map[string]any
		for _, name := range names {
			if id, msg := checkAttribute(name, body.Attributes[name]); id != "" {
				msgs = append(msgs, map[string]any{"MessageId": "Base.1.8." + id, "Message": msg,
					"RelatedProperties": []string{"/Attributes/" + name}, "Severity": "Warning"})
			}
		}
		if len(msgs) > 0 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"code": "Base.1.8.GeneralError",
				"message": msgs[0]["Message"], "@Message.ExtendedInfo": msgs}})
			return
		}
		b.mu.Lock()
		for _, name := range names {
			b.pending[name] = normalize(body.Attributes[name])
		}
		b.mu.Unlock()
		v.log.Info("bios settings pending", "vm", m.Name, "attributes", names)
		w.WriteHeader(http.StatusNoContent)
	case sub == "Bios/Actions/Bios.ResetBios" && r.Method == http.MethodPost:
		b.mu.Lock()
		b.resetPending = true
		b.pending = map[string]any{}
		b.mu.Unlock()
		v.log.Info("bios reset to defaults pending", "vm", m.Name)
		w.WriteHeader(http.StatusNoContent)
	case sub == "Bios" || sub == "Bios/Settings" || sub == "Bios/Actions/Bios.ResetBios":
		redfishError(w, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
	default:
		redfishError(w, http.StatusNotFound, "no resource at "+r.URL.Path)
	}
}
