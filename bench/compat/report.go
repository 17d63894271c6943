package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// record is one step's answers from both sides and the facets on which they differ.
type record struct {
	n     int
	step  step
	path  [2]string // the path as sent to Ironwork and to Ironic
	res   [2]result
	diffs []string // facet names that differ
}

func (r *record) compare() {
	names := map[string]bool{}
	for _, res := range r.res {
		for k := range res.facets {
			names[k] = true
		}
	}
	for k := range names {
		if k == "await" || r.res[0].facets[k] != r.res[1].facets[k] {
			r.diffs = append(r.diffs, k)
		}
	}
	sort.Slice(r.diffs, func(i, j int) bool { return facetOrder(r.diffs[i]) < facetOrder(r.diffs[j]) })
}

// facetOrder sorts facets: status first, then keys, then the rest by name.
func facetOrder(name string) string {
	switch {
	case name == "status":
		return "0"
	case name == "keys":
		return "1"
	case strings.HasPrefix(name, "keys of"):
		return "2" + name
	case name == "error keys":
		return "3"
	}
	return "4" + name
}

func (r *record) versionLabel(def string) string {
	switch r.step.Version {
	case "":
		return def
	case none:
		return "(none)"
	}
	return r.step.Version
}

func (r *record) request() string {
	p := r.path[1]
	if r.path[0] != r.path[1] {
		p = r.step.Path
	}
	return r.step.Method + " " + p
}

// writeReport writes the Markdown report and returns the number of differing requests.
func writeReport(w io.Writer, cfg config, sides [2]*side, records []record) int {
	ndiff := 0
	for _, r := range records {
		if len(r.diffs) > 0 {
			ndiff++
		}
	}
	fmt.Fprintf(w, "# Ironwork vs OpenStack Ironic: API compatibility report\n\n")
	fmt.Fprintf(w, "Generated %s by `go run ./bench/compat` (default microversion %s).\n\n",
		time.Now().UTC().Format(time.RFC3339), cfg.version)
	fmt.Fprintf(w, "| side | URL | maximum microversion |\n|---|---|---|\n")
	for _, s := range sides {
		fmt.Fprintf(w, "| %s | %s | %s |\n", s.name, s.base, s.maxVersion)
	}
	fmt.Fprintf(w, "\n%d requests, %d with differences.\n\n", len(records), ndiff)

	fmt.Fprintf(w, "## Differences\n\n")
	if ndiff == 0 {
		fmt.Fprintf(w, "None.\n\n")
	}
	for _, r := range records {
		if len(r.diffs) == 0 {
			continue
		}
		fmt.Fprintf(w, "### %d. %s\n\n`%s` (version %s)\n\n", r.n, r.step.Name, r.request(), r.versionLabel(cfg.version))
		if r.path[0] != r.path[1] {
			fmt.Fprintf(w, "Paths: Ironwork `%s`, Ironic `%s`\n\n", r.path[0], r.path[1])
		}
		fmt.Fprintf(w, "| facet | Ironwork | Ironic |\n|---|---|---|\n")
		for _, f := range r.diffs {
			a, b := r.res[0].facets[f], r.res[1].facets[f]
			if isKeyFacet(f) && a != "" && b != "" {
				a, b = keyDiff(a, b)
			}
			fmt.Fprintf(w, "| %s | %s | %s |\n", f, cell(a), cell(b))
		}
		if r.res[0].fault != "" || r.res[1].fault != "" {
			fmt.Fprintf(w, "| (error text) | %s | %s |\n", cell(r.res[0].fault), cell(r.res[1].fault))
		}
		fmt.Fprintln(w)
	}

	fmt.Fprintf(w, "## All requests\n\n| # | request | version | Ironwork | Ironic | same |\n|---|---|---|---|---|---|\n")
	for _, r := range records {
		same := "yes"
		if len(r.diffs) > 0 {
			same = "**no**: " + strings.Join(r.diffs, ", ")
		}
		fmt.Fprintf(w, "| %d | %s: `%s` | %s | %s | %s | %s |\n", r.n, cell(r.step.Name), r.request(),
			r.versionLabel(cfg.version), cell(r.res[0].facets["status"]), cell(r.res[1].facets["status"]), cell(same))
	}
	return ndiff
}

func isKeyFacet(f string) bool {
	return f == "keys" || f == "error keys" || strings.HasPrefix(f, "keys of")
}

// keyDiff turns two comma-separated key lists into "only on this side" lists.
func keyDiff(a, b string) (string, string) {
	as, bs := strings.Split(a, ", "), strings.Split(b, ", ")
	onlyA, onlyB := minus(as, bs), minus(bs, as)
	return "only here: " + orNone(onlyA), "only here: " + orNone(onlyB)
}

func minus(a, b []string) []string {
	in := map[string]bool{}
	for _, x := range b {
		in[x] = true
	}
	var out []string
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "(none)"
	}
	return strings.Join(xs, ", ")
}

// cell escapes a value for a Markdown table cell and keeps it short.
func cell(s string) string {
	if s == "" {
		return "(absent)"
	}
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\n", " ")
	return s
}
