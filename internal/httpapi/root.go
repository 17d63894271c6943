package httpapi

import (
	"net/http"

	"github.com/ironwork/ironwork"
)

func (s *Server) versionObject(r *http.Request) object {
	return object{
		{"id", "v1"},
		{"links", []link{{Href: s.baseURL(r) + "/v1/", Rel: "self"}}},
		{"status", "CURRENT"},
		{"min_version", versionString(MinMinor)},
		{"version", versionString(MaxMinor)},
	}
}

func (s *Server) root(w http.ResponseWriter, r *http.Request) error {
	v := s.versionObject(r)
	return s.writeJSON(w, http.StatusOK, object{
		{"name", "OpenStack Ironic API"},
		{"description", "Ironic is an OpenStack project which enables the provision and management of baremetal machines. This is Ironwork, an Ironic-compatible implementation."},
		{"default_version", v},
		{"versions", []object{v}},
	})
}

func (s *Server) v1(w http.ResponseWriter, r *http.Request) error {
	ver := versionOf(r.Context())
	base := s.baseURL(r)
	res := func(name string) []link {
		return []link{{Href: base + "/v1/" + name + "/", Rel: "self"}, {Href: base + "/" + name + "/", Rel: "bookmark"}}
	}
	out := object{
		{"id", "v1"},
		{"links", []map[string]string{
			{"href": base + "/v1/", "rel": "self"},
			{"href": "https://docs.openstack.org//ironic/latest/contributor//webapi.html", "rel": "describedby", "type": "text/html"},
		}},
		{"media_types", map[string]string{"base": "application/json", "type": "application/vnd.openstack.ironic.v1+json"}},
		{"version", s.versionObject(r)},
		{"chassis", res("chassis")},
		{"nodes", res("nodes")},
		{"ports", res("ports")},
		{"drivers", res("drivers")},
	}
	if ver >= vPortgroups {
		out = append(out, kv{"portgroups", res("portgroups")})
	}
	if ver >= 22 {
		out = append(out, kv{"lookup", res("lookup")}, kv{"heartbeat", res("heartbeat")})
	}
	if ver >= vVolume {
		out = append(out, kv{"volume", res("volume")})
	}
	if ver >= vConductors {
		out = append(out, kv{"conductors", res("conductors")})
	}
	if ver >= vAllocations {
		out = append(out, kv{"allocations", res("allocations")})
	}
	if ver >= vExternalEvents {
		out = append(out, kv{"events", res("events")})
	}
	if ver >= vDeployTemplates {
		out = append(out, kv{"deploy_templates", res("deploy_templates")})
	}
	if ver >= vShards {
		out = append(out, kv{"shards", res("shards")})
	}
	if ver >= vRunbooks {
		out = append(out, kv{"runbooks", res("runbooks")})
	}
	return s.writeJSON(w, http.StatusOK, out)
}

func (s *Server) shards(w http.ResponseWriter, r *http.Request) error {
	if versionOf(r.Context()) < vShards {
		return ironwork.Errorf(ironwork.ENOTFOUND, "The API is not supported for this version")
	}
	counts, err := s.store.Shards(r.Context())
	if err != nil {
		return err
	}
	out := make([]object, len(counts))
	for i, c := range counts {
		out[i] = object{{"count", c.Count}, {"name", c.Name}}
	}
	return s.writeJSON(w, http.StatusOK, object{{"shards", out}})
}
