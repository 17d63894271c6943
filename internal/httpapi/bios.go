package httpapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/ironwork/ironwork"
)

// A node's cached BIOS settings, as Ironic's: GET /v1/nodes/{ident}/bios (1.40) lists name and
// value; from 1.74 ?detail=true adds the attribute registry fields and ?fields= picks some,
// and GET /v1/nodes/{ident}/bios/{name} always shows them.

const (
	vBIOS         = 40
	vBIOSRegistry = 74
)

// biosField is one field of a BIOS setting in the API.
type biosField struct {
	name string
	get  func(b *ironwork.BIOSSetting) any
}

func optInt(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// biosFields are the fields Ironic shows, in its order: name and value, then the registry's.
var biosFields = []biosField{
	{"name", func(b *ironwork.BIOSSetting) any { return b.Name }},
	{"value", func(b *ironwork.BIOSSetting) any {
		if b.Value == nil {
			return nil
		}
		return *b.Value
	}},
	{"attribute_type", func(b *ironwork.BIOSSetting) any {
		if b.AttributeType == nil {
			return nil
		}
		return *b.AttributeType
	}},
	{"allowable_values", func(b *ironwork.BIOSSetting) any {
		if b.AllowableValues == nil {
			return []string{}
		}
		return b.AllowableValues
	}},
	{"lower_bound", func(b *ironwork.BIOSSetting) any { return optInt(b.LowerBound) }},
	{"max_length", func(b *ironwork.BIOSSetting) any { return optInt(b.MaxLength) }},
	{"min_length", func(b *ironwork.BIOSSetting) any { return optInt(b.MinLength) }},
	{"read_only", func(b *ironwork.BIOSSetting) any { return optBool(b.ReadOnly) }},
	{"reset_required", func(b *ironwork.BIOSSetting) any { return optBool(b.ResetRequired) }},
	{"unique", func(b *ironwork.BIOSSetting) any { return optBool(b.Unique) }},
	{"upper_bound", func(b *ironwork.BIOSSetting) any { return optInt(b.UpperBound) }},
}

func (s *Server) biosRoutes() {
	s.handle("GET /v1/nodes/{ident}/bios", s.listBIOS)
	s.handle("GET /v1/nodes/{ident}/bios/{name}", s.getBIOS)
}

// renderBIOS shows a setting with the named fields (created_at and updated_at always first,
// links last, as Ironic's object_to_dict).
func renderBIOS(base, node string, b *ironwork.BIOSSetting, fields []string) object {
	out := object{{"created_at", isoTime(b.CreatedAt)}, {"updated_at", optTime(b.UpdatedAt)}}
	for _, f := range biosFields {
		if slices.Contains(fields, f.name) {
			out = append(out, kv{f.name, f.get(b)})
		}
	}
	return append(out, kv{"links", links(base, "nodes/"+node+"/bios/"+b.Name)})
}

func allBIOSFields() []string {
	out := make([]string, len(biosFields))
	for i, f := range biosFields {
		out[i] = f.name
	}
	return out
}

func (s *Server) listBIOS(w http.ResponseWriter, r *http.Request) error {
	ver := versionOf(r.Context())
	if ver < vBIOS {
		return ironwork.Errorf(ironwork.ENOTFOUND, "The resource could not be found.")
	}
	q := r.URL.Query()
	fields := []string{"name", "value"}
	detail, hasDetail := q["detail"]
	fieldsQ, hasFields := q["fields"]
	if (hasDetail || hasFields) && ver < vBIOSRegistry {
		if hasDetail {
			return invalid("Invalid query parameter ?detail=%s received.", detail[0])
		}
		return notAcceptable("Request not acceptable.")
	}
	if hasDetail {
		on, err := parseBool("detail", detail[0])
		if err != nil {
			return err
		}
		if on && hasFields {
			return invalid("Can not specify ?detail=True and fields in the same request.")
		}
		if on {
			fields = allBIOSFields()
		}
	}
	if hasFields {
		fields = nil
		for _, f := range strings.Split(fieldsQ[0], ",") {
			f = strings.ToLower(strings.TrimSpace(f))
			if f == "" {
				continue
			}
			if !slices.Contains(allBIOSFields(), f) {
				return invalid("Field(s) \"%s\" are not valid", f)
			}
			fields = append(fields, f)
		}
	}
	n, err := s.loadNode(r.Context(), r.PathValue("ident"))
	if err != nil {
		return err
	}
	settings, err := s.store.ListBIOSSettings(r.Context(), n.ID)
	if err != nil {
		return err
	}
	items := make([]object, len(settings))
	for i := range settings {
		items[i] = renderBIOS(s.baseURL(r), r.PathValue("ident"), &settings[i], fields)
	}
	return s.writeJSON(w, http.StatusOK, object{{"bios", items}})
}

func (s *Server) getBIOS(w http.ResponseWriter, r *http.Request) error {
	ver := versionOf(r.Context())
	if ver < vBIOS {
		return ironwork.Errorf(ironwork.ENOTFOUND, "The resource could not be found.")
	}
	n, err := s.loadNode(r.Context(), r.PathValue("ident"))
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	b, err := s.store.GetBIOSSetting(r.Context(), n.ID, n.UUID, name)
	if err != nil {
		return err
	}
	fields := []string{"name", "value"}
	if ver >= vBIOSRegistry {
		fields = allBIOSFields()
	}
	return s.writeJSON(w, http.StatusOK, object{{name, renderBIOS(s.baseURL(r), n.UUID, &b, fields)}})
}
