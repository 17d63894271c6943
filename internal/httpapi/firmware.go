package httpapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/ironwork/ironwork"
)

// A node's firmware components, as Ironic's GET /v1/nodes/{ident}/firmware (1.86):
// component, initial_version, current_version and last_version_flashed, from 1.114 also
// vendor, model and serial_number (?fields= picks some), with created_at and updated_at, and
// no links.

const (
	vFirmware         = 86
	vFirmwareIdentity = 114
)

var (
	firmwareFields         = []string{"component", "initial_version", "current_version", "last_version_flashed"}
	firmwareIdentityFields = []string{"vendor", "model", "serial_number"}
)

func (s *Server) firmwareRoutes() {
	s.handle("GET /v1/nodes/{ident}/firmware", s.listFirmware)
}

func (s *Server) listFirmware(w http.ResponseWriter, r *http.Request) error {
	if versionOf(r.Context()) < vFirmware {
		return ironwork.Errorf(ironwork.ENOTFOUND, "The resource could not be found.")
	}
	valid := firmwareFields
	if versionOf(r.Context()) >= vFirmwareIdentity {
		valid = append(slices.Clone(firmwareFields), firmwareIdentityFields...)
	}
	fields := valid
	if q, ok := r.URL.Query()["fields"]; ok {
		fields = nil
		for _, f := range strings.Split(q[0], ",") {
			f = strings.ToLower(strings.TrimSpace(f))
			if f == "" {
				continue
			}
			if !slices.Contains(valid, f) {
				return invalid("Field(s) \"%s\" are not valid", f)
			}
			fields = append(fields, f)
		}
	}
	n, err := s.loadNode(r.Context(), r.PathValue("ident"))
	if err != nil {
		return err
	}
	comps, err := s.store.ListFirmwareComponents(r.Context(), n.ID)
	if err != nil {
		return err
	}
	items := make([]object, len(comps))
	for i, c := range comps {
		o := object{{"created_at", isoTime(c.CreatedAt)}, {"updated_at", optTime(c.UpdatedAt)}}
		for _, f := range fields {
			var v any
			switch f {
			case "component":
				v = c.Component
			case "initial_version":
				v = c.InitialVersion
			case "current_version":
				v = c.CurrentVersion
			case "last_version_flashed":
				if c.LastVersionFlashed != nil {
					v = *c.LastVersionFlashed
				}
			case "vendor":
				v = optString(c.Vendor)
			case "model":
				v = optString(c.Model)
			case "serial_number":
				v = optString(c.SerialNumber)
			}
			o = append(o, kv{f, v})
		}
		items[i] = o
	}
	return s.writeJSON(w, http.StatusOK, object{{"firmware", items}})
}

// optString is s, or null when it is empty.
func optString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
