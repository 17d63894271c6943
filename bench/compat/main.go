// Command compat sends the same sequence of Ironic API v1 requests to Ironwork and to a real
// OpenStack Ironic, and reports every request where the two disagree on the status code, the
// top-level JSON keys, the keys of the first list item, the keys of the decoded error document,
// the negotiated microversion header, the query of "next" links, or a few chosen values.
//
// It creates its own records with fixed UUIDs and names (so paths are identical on both sides)
// and deletes them again; run it against empty, throw-away servers (scripts/compat-ironic.sh
// does that). It owns no server code and must not be pointed at anything but loopback servers
// it is allowed to write to.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"time"
)

const usageText = `Usage: go run ./bench/compat -ironwork URL -ironic URL [-out FILE] [-strict]

Sends the same sequence of Ironic API v1 requests (nodes, ports, portgroups, chassis, traits,
drivers, conductors, paging, filters, PATCH edge cases, error cases, several microversions,
provision and power states, maintenance, boot devices, VIFs, history, allocations, deploy
templates, volume records; after each 202 it waits for the conductor on both sides) to
an Ironwork server and to a real OpenStack Ironic, records for each request the status code,
the sorted top-level JSON keys, the keys of the first item of every list, the keys of the
decoded inner error document, the negotiated X-OpenStack-Ironic-API-Version, the query of
"next" links and a few chosen values, and writes a Markdown report of every request where the
two sides differ (plus a log of all requests).

Both servers should be empty and disposable: the check creates records with fixed UUIDs and
names (it first deletes leftovers of an earlier run). scripts/compat-ironic.sh starts both.

Exit status: 0 when the comparison ran (differences or not), 1 when -strict is given and
something differs, 2 on usage errors or when a server cannot be reached.

Flags:
`

type config struct {
	ironwork, ironic string
	out              string
	version          string
	strict           bool
	timeout          time.Duration
}

func main() {
	var cfg config
	fs := flag.NewFlagSet("compat", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.ironwork, "ironwork", "", "base URL of the Ironwork server, e.g. http://127.0.0.1:6385 (required)")
	fs.StringVar(&cfg.ironic, "ironic", "", "base URL of the real Ironic server, e.g. http://127.0.0.1:6400 (required)")
	fs.StringVar(&cfg.out, "out", "", "write the Markdown report to this file (default: standard output)")
	fs.StringVar(&cfg.version, "version", "1.82", "default microversion sent in X-OpenStack-Ironic-API-Version")
	fs.BoolVar(&cfg.strict, "strict", false, "exit 1 when any request differs")
	fs.DurationVar(&cfg.timeout, "timeout", 60*time.Second, "timeout of each request")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if cfg.ironwork == "" || cfg.ironic == "" || fs.NArg() != 0 {
		fs.Usage()
		os.Exit(2)
	}
	n, err := run(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compat:", err)
		os.Exit(2)
	}
	if cfg.strict && n > 0 {
		os.Exit(1)
	}
}

// run performs the comparison and writes the report; it returns the number of differing requests.
func run(ctx context.Context, cfg config) (int, error) {
	sides := [2]*side{
		{name: "Ironwork", base: strings.TrimRight(cfg.ironwork, "/"), saved: map[string]string{}},
		{name: "Ironic", base: strings.TrimRight(cfg.ironic, "/"), saved: map[string]string{}},
	}
	client := &http.Client{Timeout: cfg.timeout}
	for _, s := range sides {
		s.client = client
		u, err := url.Parse(s.base)
		if err != nil || u.Host == "" {
			return 0, fmt.Errorf("bad %s URL %q", s.name, s.base)
		}
		r := s.do(ctx, step{Method: "GET", Path: "/", Version: none}, cfg.version)
		if r.err != nil || r.status != http.StatusOK {
			return 0, fmt.Errorf("%s at %s does not answer GET / (status %d, %v)", s.name, s.base, r.status, r.err)
		}
		s.maxVersion = r.maxVersion
		if s.maxVersion == "" {
			s.maxVersion = jsonString(r.body, "/default_version/version")
		}
	}

	// Leftovers of an earlier run would turn creates into conflicts: remove them, unrecorded.
	for _, st := range cleanup() {
		for _, s := range sides {
			s.do(ctx, st, cfg.version)
		}
	}

	var records []record
	for i, st := range steps() {
		rec := record{n: i + 1, step: st}
		for j, s := range sides {
			rec.res[j] = s.do(ctx, st, cfg.version)
			rec.path[j] = s.resolve(st.Path)
			if st.Await != nil && rec.res[j].status < 400 {
				if err := s.wait(ctx, *st.Await, cfg.version); err != nil {
					rec.res[j].facets["await"] = err.Error()
				}
			}
		}
		rec.compare()
		records = append(records, rec)
	}
	for _, st := range cleanup() {
		for _, s := range sides {
			s.do(ctx, st, cfg.version)
		}
	}

	var buf bytes.Buffer
	diffs := writeReport(&buf, cfg, sides, records)
	if cfg.out == "" {
		_, err := os.Stdout.Write(buf.Bytes())
		return diffs, err
	}
	if err := os.WriteFile(cfg.out, buf.Bytes(), 0o644); err != nil {
		return diffs, err
	}
	fmt.Fprintf(os.Stderr, "compat: %d requests, %d differ; report written to %s\n", len(records), diffs, cfg.out)
	return diffs, nil
}

// none as a step's Version sends no microversion header at all.
const none = "none"

// step is one request sent to both servers.
type step struct {
	Name    string
	Method  string
	Path    string            // may hold {placeholders} filled from values saved by earlier steps
	Version string            // "" means the default (-version); none means no header
	Body    any               // marshalled to JSON when not nil
	Raw     string            // sent verbatim when not empty (malformed JSON and the like)
	Header  map[string]string // extra request headers (they override the defaults)
	// Save stores string values of the answer, by JSON pointer, under a placeholder name.
	Save map[string]string
	// Values are JSON pointers whose values must be equal on both sides (2xx answers only).
	Values []string
	// Await, when set, polls each side after its answer until a value is reached (the
	// conductor's work behind a 202), so that the next step starts from the same state.
	Await *await
}

// await is a GET polled until the value at Ptr is Want (compared as JSON: a string, a bool,
// nil for null).
type await struct {
	Path, Ptr string
	Want      any
}

// awaitTimeout bounds one await on one side; an await that times out is reported as a
// difference even when both sides time out alike (the steps after it start from a state the
// sequence did not mean).
const awaitTimeout = 90 * time.Second

// side is one server under test, with the values its answers gave to later steps.
type side struct {
	name, base string
	maxVersion string
	client     *http.Client
	saved      map[string]string
}

// result is what one server answered to one step.
type result struct {
	err        error
	status     int
	body       any
	rawBody    string
	version    string // X-OpenStack-Ironic-API-Version of the answer
	maxVersion string
	facets     map[string]string
	fault      string
}

func (s *side) resolve(path string) string {
	for k, v := range s.saved {
		path = strings.ReplaceAll(path, "{"+k+"}", v)
	}
	return path
}

func (s *side) do(ctx context.Context, st step, defVersion string) result {
	var body io.Reader
	switch {
	case st.Raw != "":
		body = strings.NewReader(st.Raw)
	case st.Body != nil:
		b, err := json.Marshal(st.Body)
		if err != nil {
			return result{err: err}
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, st.Method, s.base+s.resolve(st.Path), body)
	if err != nil {
		return result{err: err}
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range st.Header {
		req.Header.Set(k, v)
	}
	switch st.Version {
	case "":
		req.Header.Set("X-OpenStack-Ironic-API-Version", defVersion)
	case none:
	default:
		req.Header.Set("X-OpenStack-Ironic-API-Version", st.Version)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return result{err: err, facets: map[string]string{"status": "transport error: " + err.Error()}}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{err: err, facets: map[string]string{"status": "read error: " + err.Error()}}
	}
	r := result{
		status:     resp.StatusCode,
		rawBody:    string(raw),
		version:    resp.Header.Get("X-OpenStack-Ironic-API-Version"),
		maxVersion: resp.Header.Get("X-OpenStack-Ironic-API-Maximum-Version"),
	}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			r.body = nil
		}
	}
	r.facets = facetsOf(st, &r, s.base)
	if resp.StatusCode < 400 {
		for name, ptr := range st.Save {
			if v := jsonString(r.body, ptr); v != "" {
				if u, err := url.Parse(v); err == nil && u.Scheme != "" {
					v = u.RequestURI() // a link: keep path and query, drop this side's host
				}
				s.saved[name] = v
			}
		}
	}
	return r
}

// wait polls a.Path on this side until the value at a.Ptr is a.Want, for at most awaitTimeout.
func (s *side) wait(ctx context.Context, a await, version string) error {
	want, err := json.Marshal(a.Want)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(awaitTimeout)
	last := ""
	for time.Now().Before(deadline) {
		r := s.do(ctx, step{Method: "GET", Path: a.Path}, version)
		if r.status == http.StatusOK {
			if last = jsonValue(r.body, a.Ptr); last == string(want) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s never became %s (last %s)", a.Ptr, want, last)
}

// facetsOf reduces an answer to the comparable facts recorded for it.
// Links in compared values have this side's base URL replaced by "BASE".
func facetsOf(st step, r *result, base string) map[string]string {
	f := map[string]string{"status": fmt.Sprint(r.status)}
	if st.Version != none || r.version != "" {
		f["negotiated version header"] = orDash(r.version)
	}
	switch {
	case r.body == nil && strings.TrimSpace(r.rawBody) != "":
		f["body"] = "not JSON"
	case r.body != nil:
		obj, ok := r.body.(map[string]any)
		if !ok {
			f["body"] = fmt.Sprintf("JSON %T", r.body)
			break
		}
		f["keys"] = keyList(obj)
		for k, v := range obj {
			if arr, ok := v.([]any); ok && len(arr) > 0 {
				if item, ok := arr[0].(map[string]any); ok {
					f["keys of "+k+"[0]"] = keyList(item)
				}
			}
		}
		if next, ok := obj["next"].(string); ok {
			f["next link query"] = nextQuery(next)
		}
		if em, ok := obj["error_message"]; ok {
			inner := em
			if s, ok := em.(string); ok {
				var v any
				if json.Unmarshal([]byte(s), &v) == nil {
					inner = v
				} else {
					inner = nil
					f["error keys"] = "(not JSON)"
				}
			}
			if m, ok := inner.(map[string]any); ok {
				f["error keys"] = keyList(m)
				for _, k := range []string{"faultstring", "description"} {
					if s, ok := m[k].(string); ok {
						r.fault = s
					}
				}
			}
		}
	}
	if r.status < 400 {
		for _, ptr := range st.Values {
			f["value "+ptr] = strings.ReplaceAll(jsonValue(r.body, ptr), base, "BASE")
		}
	}
	return f
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func keyList(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

// nextQuery returns a next link's path and sorted query, without scheme and host; the names in
// "fields" are sorted too (their order carries no meaning).
func nextQuery(link string) string {
	u, err := url.Parse(link)
	if err != nil {
		return "unparsable: " + link
	}
	q := u.Query()
	var parts []string
	for k, vs := range q {
		for _, v := range vs {
			if k == "fields" {
				names := strings.Split(v, ",")
				sort.Strings(names)
				v = strings.Join(names, ",")
			}
			parts = append(parts, k+"="+v)
		}
	}
	sort.Strings(parts)
	return u.Path + "?" + strings.Join(parts, "&")
}

// lookup follows a JSON pointer (RFC 6901) through decoded JSON.
func lookup(doc any, ptr string) (any, bool) {
	if ptr == "" || ptr == "/" {
		return doc, true
	}
	cur := doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[tok]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			var i int
			if _, err := fmt.Sscanf(tok, "%d", &i); err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

func jsonString(doc any, ptr string) string {
	v, ok := lookup(doc, ptr)
	if !ok {
		return ""
	}
	s, _ := v.(string)
	return s
}

func jsonValue(doc any, ptr string) string {
	v, ok := lookup(doc, ptr)
	if !ok {
		return "(absent)"
	}
	if arr, ok := v.([]any); ok && allStrings(arr) {
		// Lists of strings (traits, vifs): order is not part of the contract.
		ss := make([]string, len(arr))
		for i, x := range arr {
			ss[i] = x.(string)
		}
		slices.Sort(ss)
		b, _ := json.Marshal(ss)
		return string(b)
	}
	b, _ := json.Marshal(v) // maps marshal with sorted keys
	return string(b)
}

func allStrings(arr []any) bool {
	for _, x := range arr {
		if _, ok := x.(string); !ok {
			return false
		}
	}
	return true
}
