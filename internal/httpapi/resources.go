package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strings"
)

// listSpec describes a paged collection of T: how to show an item and which fields the list
// shows without detail.
type listSpec[T any] struct {
	table       fieldTable[T]
	path        string   // URL path below /v1, e.g. "ports"
	key         string   // the collection's key in the body
	linksKey    string   // where gophercloud looks for the next link; default key+"_links"
	defaults    []string // fields of a list without detail
	sortRefused []string
	uuid        func(*T) string
	render      func(r *http.Request, v *T, fields []string) object
	// filters lists the query parameters the list accepts, with their minimum version.
	filters map[string]int
}

// serveOne answers a GET of one T: ?fields= checked against table, then load, then render.
func serveOne[T any](s *Server, w http.ResponseWriter, r *http.Request, table fieldTable[T],
	load func(r *http.Request) (*T, error), render func(r *http.Request, v *T, fields []string) object) error {
	fields, err := parseFields(table, r.URL.Query().Get("fields"), versionOf(r.Context()))
	if err != nil {
		return err
	}
	v, err := load(r)
	if err != nil {
		return err
	}
	return s.writeJSON(w, http.StatusOK, render(r, v, fields))
}

// byIdent loads what the path's {ident} names with a store getter.
func byIdent[T any](get func(ctx context.Context, ident string) (*T, error)) func(r *http.Request) (*T, error) {
	return func(r *http.Request) (*T, error) { return get(r.Context(), r.PathValue("ident")) }
}

// serveList handles a list request for spec; fetch reads one page with the parsed parameters.
func serveList[T any](s *Server, w http.ResponseWriter, r *http.Request, spec listSpec[T], detailPath bool,
	fetch func(p listParams) ([]*T, error)) error {
	ver := versionOf(r.Context())
	p, err := s.parseList(r, detailPath)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	var unexpected []string
	for k := range q {
		switch k {
		case "limit", "marker", "sort_key", "sort_dir", "detail":
			continue
		case "fields":
			if !detailPath {
				continue
			}
		}
		since, ok := spec.filters[k]
		if !ok {
			unexpected = append(unexpected, k)
			continue
		}
		if since > ver {
			return tooNew(since)
		}
		p.keep[k] = q[k]
	}
	if len(unexpected) > 0 {
		slices.Sort(unexpected)
		return invalid("Unexpected arguments: %s", strings.Join(unexpected, ", "))
	}
	fields, err := parseFields(spec.table, q.Get("fields"), ver)
	if err != nil {
		return err
	}
	if fields != nil && p.detail {
		return invalid("Can not specify ?detail=True and fields in the same request.")
	}
	if slices.Contains(spec.sortRefused, p.page.SortKey) {
		return invalid("The sort_key value %s is an invalid field for sorting", p.page.SortKey)
	}
	if f, ok := spec.table.lookup(p.page.SortKey); ok && f.since > ver {
		return notAcceptable("Request not acceptable.")
	}
	show := fields
	if show == nil && !p.detail && !detailPath {
		show = spec.defaults
	}
	p.fields = show
	if detailPath || p.detail {
		p.fields = fields
	}
	items, err := fetch(p)
	if err != nil {
		return err
	}
	out := make([]object, len(items))
	last := ""
	for i, v := range items {
		out[i] = spec.render(r, v, show)
		last = spec.uuid(v)
	}
	path := spec.path
	if detailPath {
		path += "/detail"
	}
	linksKey := spec.linksKey
	if linksKey == "" {
		linksKey = spec.key + "_links"
	}
	return s.writeJSON(w, http.StatusOK, s.listBody(r, path, spec.key, linksKey, out, p, last))
}
