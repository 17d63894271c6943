package httpapi

import (
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

func (s *Server) driverRoutes() {
	s.handle("GET /v1/drivers", s.listDrivers)
	s.handle("GET /v1/drivers/{name}", s.getDriver)
	s.handle("GET /v1/drivers/{name}/properties", s.driverProperties)
	s.handle("GET /v1/drivers/{name}/raid/logical_disk_properties", s.raidLogicalDiskProperties)
	s.handle("GET /v1/conductors", s.listConductors)
	s.handle("GET /v1/conductors/{hostname}", s.getConductor)
}

// driverHosts maps each hardware type to the live conductors that serve it.
func (s *Server) driverHosts(r *http.Request) (map[string][]string, error) {
	cs, err := s.store.ListConductors(r.Context(), "", 0)
	if err != nil {
		return nil, err
	}
	hosts := map[string][]string{}
	now := time.Now()
	for _, c := range cs {
		if !sqlstore.ConductorAlive(c, now, s.opts.ConductorTimeout) {
			continue
		}
		for _, d := range c.Drivers {
			if s.drivers.HasHardwareType(d) {
				hosts[d] = append(hosts[d], c.Hostname)
			}
		}
	}
	return hosts, nil
}

// renderDriver shows a hardware type; detail adds its default and enabled interfaces.
func (s *Server) renderDriver(r *http.Request, hw ironwork.HardwareType, hosts []string, detail bool, fields []string) object {
	ver := versionOf(r.Context())
	base := s.baseURL(r)
	if hosts == nil {
		hosts = []string{}
	}
	out := object{{"hosts", hosts}, {"name", hw.Name}}
	if ver >= vDynamicDrivers {
		out = append(out, kv{"type", "dynamic"})
	}
	if detail && ver >= vDynamicDrivers {
		for _, k := range ironwork.InterfaceKinds {
			if interfaceSince[k] > ver {
				continue
			}
			d, err := s.drivers.DefaultFor(hw, k)
			var dv any = d
			if err != nil {
				dv = nil
			}
			enabled := s.drivers.EnabledFor(hw, k)
			if enabled == nil {
				enabled = []string{}
			}
			out = append(out, kv{"default_" + k.Field(), dv}, kv{"enabled_" + string(k) + "_interfaces", enabled})
		}
	}
	out = append(out, kv{"links", links(base, "drivers/"+hw.Name)})
	if ver >= 14 {
		out = append(out, kv{"properties", links(base, "drivers/"+hw.Name+"/properties")})
	}
	if fields != nil {
		kept := object{}
		for _, m := range out {
			if slices.Contains(fields, m.k) {
				kept = append(kept, m)
			}
		}
		out = kept
	}
	return out
}

func (s *Server) listDrivers(w http.ResponseWriter, r *http.Request) error {
	ver := versionOf(r.Context())
	q := r.URL.Query()
	detail := false
	for k, v := range q {
		switch k {
		case "type", "detail":
			if ver < vDynamicDrivers {
				return tooNew(vDynamicDrivers)
			}
		case "fields":
			if ver < vDriverFields {
				return tooNew(vDriverFields)
			}
		default:
			return invalid("Unexpected arguments: %s", k)
		}
		if k == "detail" {
			b, err := parseBool("detail", v[0])
			if err != nil {
				return err
			}
			detail = b
		}
	}
	var fields []string
	if f := q.Get("fields"); f != "" {
		if detail {
			return invalid("Can not specify ?detail=True and fields in the same request.")
		}
		fields = splitList(f)
	}
	if t := q.Get("type"); t != "" && t != "dynamic" {
		if t != "classic" {
			return invalid("\"type\" filter must be one of \"classic\" or \"dynamic\", if specified.")
		}
		return s.writeJSON(w, http.StatusOK, object{{"drivers", []object{}}})
	}
	hosts, err := s.driverHosts(r)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(hosts))
	for name := range hosts {
		names = append(names, name)
	}
	sort.Strings(names)
	out := []object{}
	for _, name := range names {
		hw, _ := s.drivers.HardwareType(name)
		out = append(out, s.renderDriver(r, hw, hosts[name], detail, fields))
	}
	return s.writeJSON(w, http.StatusOK, object{{"drivers", out}})
}

func (s *Server) lookupDriver(r *http.Request) (ironwork.HardwareType, []string, error) {
	name := r.PathValue("name")
	hosts, err := s.driverHosts(r)
	if err != nil {
		return ironwork.HardwareType{}, nil, err
	}
	hw, ok := s.drivers.HardwareType(name)
	if !ok || len(hosts[name]) == 0 {
		return hw, nil, ironwork.Errorf(ironwork.ENOTFOUND, "Could not find the following driver(s) or hardware type(s): %s.", name)
	}
	return hw, hosts[name], nil
}

func (s *Server) getDriver(w http.ResponseWriter, r *http.Request) error {
	hw, hosts, err := s.lookupDriver(r)
	if err != nil {
		return err
	}
	var fields []string
	if f := r.URL.Query().Get("fields"); f != "" {
		if versionOf(r.Context()) < vDriverFields {
			return tooNew(vDriverFields)
		}
		fields = splitList(f)
	}
	return s.writeJSON(w, http.StatusOK, s.renderDriver(r, hw, hosts, true, fields))
}

func (s *Server) driverProperties(w http.ResponseWriter, r *http.Request) error {
	hw, _, err := s.lookupDriver(r)
	if err != nil {
		return err
	}
	return s.writeJSON(w, http.StatusOK, s.drivers.Properties(hw))
}

func (s *Server) renderConductor(r *http.Request, c *ironwork.Conductor, detail bool) object {
	out := object{{"hostname", c.Hostname}, {"conductor_group", c.ConductorGroup},
		{"alive", sqlstore.ConductorAlive(c, time.Now(), s.opts.ConductorTimeout)}}
	if detail {
		drivers := c.Drivers
		if drivers == nil {
			drivers = []string{}
		}
		out = append(out, kv{"drivers", drivers}, kv{"created_at", isoTime(c.CreatedAt)}, kv{"updated_at", optTime(c.UpdatedAt)})
	}
	return append(out, kv{"links", links(s.baseURL(r), "conductors/"+c.Hostname)})
}

func (s *Server) listConductors(w http.ResponseWriter, r *http.Request) error {
	if versionOf(r.Context()) < vConductors {
		return ironwork.Errorf(ironwork.ENOTFOUND, "The API is not supported for this version")
	}
	q := r.URL.Query()
	limit := s.opts.MaxLimit
	if v := q.Get("limit"); v != "" {
		n, ok := atoi(v)
		if !ok {
			return invalid("Expected an integer for limit: %s", v)
		}
		if n <= 0 {
			return invalid("Limit must be positive")
		}
		limit = min(n, limit)
	}
	detail := false
	if v := q.Get("detail"); v != "" {
		b, err := parseBool("detail", v)
		if err != nil {
			return err
		}
		detail = b
	}
	cs, err := s.store.ListConductors(r.Context(), q.Get("marker"), limit)
	if err != nil {
		return err
	}
	items := make([]object, len(cs))
	for i, c := range cs {
		items[i] = s.renderConductor(r, c, detail)
	}
	body := object{{"conductors", items}}
	if len(cs) == limit {
		next := s.baseURL(r) + "/v1/conductors?limit=" + q.Get("limit") + "&marker=" + cs[len(cs)-1].Hostname
		if detail {
			next += "&detail=True"
		}
		next = strings.Replace(next, "limit=&", "", 1)
		body = append(body, kv{"next", next}, kv{"conductor_links", []link{{Href: next, Rel: "next"}}})
	}
	return s.writeJSON(w, http.StatusOK, body)
}

func (s *Server) getConductor(w http.ResponseWriter, r *http.Request) error {
	if versionOf(r.Context()) < vConductors {
		return ironwork.Errorf(ironwork.ENOTFOUND, "The API is not supported for this version")
	}
	c, err := s.store.GetConductor(r.Context(), r.PathValue("hostname"))
	if err != nil {
		return err
	}
	return s.writeJSON(w, http.StatusOK, s.renderConductor(r, c, true))
}
