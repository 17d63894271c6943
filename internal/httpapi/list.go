package httpapi

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// listParams are the paging, sorting and field-selection parameters every list takes.
type listParams struct {
	page        sqlstore.Page
	fields      []string // nil: the list's default (detail or not)
	detail      bool
	detailGiven bool
	keep        url.Values // the query parameters the next link repeats
}

// parseList reads limit, marker, sort_key, sort_dir and detail. The caller parses fields,
// which depend on the resource.
func (s *Server) parseList(r *http.Request, detailPath bool) (listParams, error) {
	q := r.URL.Query()
	ver := versionOf(r.Context())
	p := listParams{detail: detailPath, keep: url.Values{}}
	p.page.Limit = s.opts.MaxLimit
	if v := q.Get("limit"); v != "" {
		n, ok := atoi(v)
		if !ok {
			return p, invalid("Expected an integer for limit: %s", v)
		}
		if n <= 0 {
			return p, invalid("Limit must be positive")
		}
		p.page.Limit = min(n, s.opts.MaxLimit)
	}
	if v := q.Get("marker"); v != "" {
		if !ironwork.IsUUID(v) {
			return p, invalid("Expected UUID for marker: %s", v)
		}
		p.page.Marker = canonicalUUID(v)
	}
	p.page.SortKey = q.Get("sort_key")
	p.page.SortDir = q.Get("sort_dir")
	if p.page.SortKey == "" {
		p.page.SortKey = "id"
	}
	if p.page.SortDir == "" {
		p.page.SortDir = "asc"
	}
	if v, ok := q["detail"]; ok {
		if detailPath {
			return p, invalid("Unexpected arguments: detail")
		}
		if ver < vDetail {
			return p, invalid("Invalid query parameter ?detail=%s received.", v[0])
		}
		b, err := parseBool("detail", v[0])
		if err != nil {
			return p, err
		}
		p.detail, p.detailGiven = b, true
	}
	return p, nil
}

// listBody builds a collection response: the items under key, and when the page is full a
// "next" link (as Ironic) plus "<linksKey>" with rel "next" (as gophercloud's pagers read).
func (s *Server) listBody(r *http.Request, path, key, linksKey string, items []object, p listParams, lastUUID string) object {
	return s.listBodyOf(r, path, key, linksKey, items, len(items), p, lastUUID)
}

// listBodyOf is listBody for items already encoded (or not): count is how many there are.
func (s *Server) listBodyOf(r *http.Request, path, key, linksKey string, items any, count int, p listParams, lastUUID string) object {
	body := object{{key, items}}
	if count == 0 || count < p.page.Limit {
		return body
	}
	q := url.Values{}
	for k, v := range p.keep {
		q[k] = v
	}
	q.Set("sort_key", p.page.SortKey)
	q.Set("sort_dir", p.page.SortDir)
	if p.detailGiven {
		q.Set("detail", strconv.FormatBool(p.detail))
	}
	if p.fields != nil {
		q.Set("fields", strings.Join(p.fields, ","))
	}
	q.Set("limit", strconv.Itoa(p.page.Limit))
	q.Set("marker", lastUUID)
	next := s.baseURL(r) + "/v1/" + path + "?" + strings.ReplaceAll(q.Encode(), "%2C", ",")
	return append(body, kv{"next", next}, kv{linksKey, []link{{Href: next, Rel: "next"}}})
}
