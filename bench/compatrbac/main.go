// Command compatrbac compares Ironwork with a real OpenStack Ironic when both enforce Ironic's
// secure RBAC behind one Keystone: it creates personas in Keystone (system admin and reader,
// an owner project's admin and member, a lessee project's member, an unrelated project's
// member), seeds both servers identically as the system admin, replays the same requests as
// every persona on both sides and reports where the status codes, the nodes, ports and
// allocations each list returns, or the chosen field values (masked driver_info, owner,
// lessee...) differ. scripts/compat-ironic-rbac.sh starts Keystone and both servers and runs it.
// It must only be pointed at throw-away loopback servers: it creates and deletes records.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"
)

type config struct {
	ironwork, ironic, keystone string
	adminPassword              string
	out, version               string
	strict                     bool
}

func main() {
	var cfg config
	fs := flag.NewFlagSet("compatrbac", flag.ContinueOnError)
	fs.StringVar(&cfg.ironwork, "ironwork", "", "base URL of Ironwork (auth_strategy keystone)")
	fs.StringVar(&cfg.ironic, "ironic", "", "base URL of the real Ironic (auth_strategy keystone)")
	fs.StringVar(&cfg.keystone, "keystone", "", "Keystone v3 URL, e.g. http://127.0.0.1:5000/v3")
	fs.StringVar(&cfg.adminPassword, "admin-password", "", "password of Keystone's bootstrap user admin")
	fs.StringVar(&cfg.out, "out", "", "write the Markdown report here (default: standard output)")
	fs.StringVar(&cfg.version, "version", "1.82", "microversion sent with every request")
	fs.BoolVar(&cfg.strict, "strict", false, "exit 1 when anything differs")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if cfg.ironwork == "" || cfg.ironic == "" || cfg.keystone == "" || cfg.adminPassword == "" {
		fs.Usage()
		os.Exit(2)
	}
	n, err := run(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compatrbac:", err)
		os.Exit(2)
	}
	if cfg.strict && n > 0 {
		os.Exit(1)
	}
}

// persona is a Keystone user and the scope of its token.
type persona struct {
	name, user, project, role string // project "" is the system scope
	token                     string
}

// env is what the run created: personas and the labels that replace ids in the report.
type env struct {
	personas []*persona
	admin    *persona
	projects map[string]string // label (A, B, C) -> project id
	labels   *strings.Replacer // ids -> labels
}

// Fixed records, the same on both sides.
var (
	nodeNames = []string{"owned", "leased", "lessee-only", "unowned", "other-project"}
	nodeUUID  = map[string]string{
		"owned": "6b0d8f3e-0000-4000-8000-00000000a001", "leased": "6b0d8f3e-0000-4000-8000-00000000a002",
		"lessee-only": "6b0d8f3e-0000-4000-8000-00000000a003", "unowned": "6b0d8f3e-0000-4000-8000-00000000a004",
		"other-project": "6b0d8f3e-0000-4000-8000-00000000a005",
	}
	allocUUID = map[string]string{"alloc-A": "6b0d8f3e-0000-4000-8000-00000000c001", "alloc-none": "6b0d8f3e-0000-4000-8000-00000000c002"}
	missing   = "6b0d8f3e-0000-4000-8000-00000000dead"
)

func portUUID(node string) string {
	return strings.Replace(nodeUUID[node], "-00000000a", "-00000000b", 1)
}

func run(ctx context.Context, cfg config) (int, error) {
	client := &http.Client{Timeout: 90 * time.Second}
	e, err := setupKeystone(ctx, &keystone{base: strings.TrimRight(cfg.keystone, "/"), client: client}, cfg.adminPassword)
	if err != nil {
		return 0, err
	}
	sides := [2]*side{
		{name: "Ironwork", base: strings.TrimRight(cfg.ironwork, "/"), client: client, version: cfg.version},
		{name: "Ironic", base: strings.TrimRight(cfg.ironic, "/"), client: client, version: cfg.version},
	}
	for _, s := range sides {
		r := s.do(ctx, "", call{method: "GET", path: "/v1"})
		if r.err != nil || r.status != http.StatusOK {
			return 0, fmt.Errorf("%s at %s does not answer GET /v1 (status %d, %v)", s.name, s.base, r.status, r.err)
		}
	}
	start := time.Now()
	// Seed (and first clean what an earlier run left) as the system admin; unrecorded.
	for _, s := range sides {
		for _, c := range cleanupCalls() {
			s.do(ctx, e.admin.token, c)
		}
		for _, c := range seedCalls(e) {
			if r := s.do(ctx, e.admin.token, c); r.err != nil || r.status >= 300 {
				return 0, fmt.Errorf("seed %s on %s: status %d, %v: %s", c, s.name, r.status, r.err, r.body)
			}
		}
	}
	var recs []record
	for _, st := range steps(e) {
		rec := record{step: st}
		for i, s := range sides {
			token := st.persona.token
			if st.token != nil {
				token = *st.token
			}
			r := s.do(ctx, token, st.call)
			rec.res[i] = r
			rec.view[i] = e.labels.Replace(st.look(r))
		}
		recs = append(recs, rec)
	}
	for _, s := range sides {
		for _, c := range cleanupCalls() {
			s.do(ctx, e.admin.token, c)
		}
	}
	elapsed := time.Since(start)
	var buf bytes.Buffer
	diffs := writeReport(&buf, cfg, e, recs, elapsed)
	if cfg.out == "" {
		_, err = os.Stdout.Write(buf.Bytes())
	} else {
		err = os.WriteFile(cfg.out, buf.Bytes(), 0o644)
	}
	fmt.Fprintf(os.Stderr, "compatrbac: %d requests per side, %d differ (%v)\n", len(recs), diffs, elapsed.Round(time.Millisecond))
	return diffs, err
}

// setupKeystone creates projects A (owner), B (lessee), C (unrelated) and the personas.
func setupKeystone(ctx context.Context, k *keystone, adminPassword string) (*env, error) {
	tok, err := k.token(ctx, "admin", adminPassword, "")
	if err != nil {
		return nil, err
	}
	k.admin = tok
	e := &env{projects: map[string]string{}}
	var pairs []string
	for _, p := range []string{"A", "B", "C"} {
		id, err := k.id(ctx, "project", "rbac-"+p, map[string]any{"domain_id": "default"})
		if err != nil {
			return nil, err
		}
		e.projects[p] = id
		pairs = append(pairs, id, "project-"+p)
	}
	for name, u := range nodeUUID {
		pairs = append(pairs, u, "node:"+name, portUUID(name), "port:"+name)
	}
	for name, u := range allocUUID {
		pairs = append(pairs, u, name)
	}
	e.labels = strings.NewReplacer(pairs...)
	roles := map[string]string{}
	for _, r := range []string{"admin", "member", "reader"} {
		if roles[r], err = k.id(ctx, "role", r, nil); err != nil {
			return nil, err
		}
	}
	e.admin = &persona{name: "system-admin", user: "admin", role: "admin", token: tok}
	e.personas = []*persona{e.admin,
		{name: "system-reader", user: "rbac-sysreader", role: "reader"},
		{name: "owner-admin", user: "rbac-owner-admin", project: "A", role: "admin"},
		{name: "owner-member", user: "rbac-owner-member", project: "A", role: "member"},
		{name: "lessee-member", user: "rbac-lessee-member", project: "B", role: "member"},
		{name: "other-member", user: "rbac-other-member", project: "C", role: "member"},
	}
	for _, p := range e.personas[1:] {
		uid, err := k.id(ctx, "user", p.user, map[string]any{"password": p.user + "-pw", "domain_id": "default"})
		if err != nil {
			return nil, err
		}
		if err := k.grant(ctx, uid, e.projects[p.project], roles[p.role]); err != nil {
			return nil, err
		}
		scope := ""
		if p.project != "" {
			scope = "rbac-" + p.project
		}
		if p.token, err = k.token(ctx, p.user, p.user+"-pw", scope); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// call is one HTTP request to the Ironic API.
type call struct {
	method, path string
	body         any
}

func (c call) String() string { return c.method + " " + c.path }

// result is one side's answer.
type result struct {
	status int
	body   []byte
	err    error
}

// side is one of the two servers.
type side struct {
	name, base, version string
	client              *http.Client
}

func (s *side) do(ctx context.Context, token string, c call) result {
	var rd io.Reader
	if c.body != nil {
		b, err := json.Marshal(c.body)
		if err != nil {
			return result{err: err}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, s.base+c.path, rd)
	if err != nil {
		return result{err: err}
	}
	req.Header.Set("X-OpenStack-Ironic-API-Version", s.version)
	req.Header.Set("Accept", "application/json")
	if c.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, body: b, err: err}
}

// record is one step's answers on both sides and what is compared of them.
type record struct {
	step step
	res  [2]result
	view [2]string
}

func (r record) differs() bool { return r.view[0] != r.view[1] }

// look renders what is compared of an answer: the status, then the step's chosen parts.
type look func(r result) string

// step is a request sent as a persona on both sides.
type step struct {
	persona *persona
	token   *string // overrides the persona's token (missing or bad token checks)
	call    call
	look    look
}

// statusOnly compares the status code.
func statusOnly(r result) string {
	if r.err != nil {
		return "error: " + r.err.Error()
	}
	return fmt.Sprint(r.status)
}

// listOf compares the status and the sorted ids of the listed records that this run made,
// with the chosen fields of each.
func listOf(key string, fields ...string) look {
	return func(r result) string {
		if r.err != nil || r.status != http.StatusOK {
			return statusOnly(r)
		}
		var doc map[string][]map[string]any
		if err := json.Unmarshal(r.body, &doc); err != nil {
			return fmt.Sprintf("%d, undecodable: %v", r.status, err)
		}
		var items []string
		for _, it := range doc[key] {
			id, _ := it["uuid"].(string)
			if !strings.HasPrefix(id, "6b0d8f3e-") {
				continue // not made by this run
			}
			s := id
			for _, f := range fields {
				b, _ := json.Marshal(it[f])
				s += fmt.Sprintf(" %s=%s", f, b)
			}
			items = append(items, s)
		}
		sort.Strings(items)
		return fmt.Sprintf("%d [%s]", r.status, strings.Join(items, "; "))
	}
}

// fieldsOf compares the status and the chosen top-level fields of a 2xx answer.
func fieldsOf(fields ...string) look {
	return func(r result) string {
		if r.err != nil || r.status >= 300 || len(fields) == 0 {
			return statusOnly(r)
		}
		var doc map[string]any
		if err := json.Unmarshal(r.body, &doc); err != nil {
			return fmt.Sprintf("%d, undecodable: %v", r.status, err)
		}
		s := fmt.Sprint(r.status)
		for _, f := range fields {
			b, _ := json.Marshal(doc[f])
			s += fmt.Sprintf(" %s=%s", f, b)
		}
		return s
	}
}
