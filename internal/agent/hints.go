package agent

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

const gib = 1 << 30

// minRootSize is the smallest disk picked without hints, as IPA's
// guess_root_disk.
const minRootSize = 4 * gib

// hintKind is how a hint's value is compared.
type hintKind int

const (
	hintString hintKind = iota
	hintSize
	hintBool
)

// validHints are Ironic's root device hint names (tran is not supported).
var validHints = map[string]hintKind{
	"name": hintString, "size": hintSize, "model": hintString, "vendor": hintString,
	"serial": hintString, "wwn": hintString, "wwn_with_extension": hintString,
	"wwn_vendor_extension": hintString, "rotational": hintBool, "hctl": hintString,
	"by_path": hintString,
}

// Operators of oslo.utils' specs_matcher, longest first so prefixes parse.
var (
	stringOps  = []string{"<all-in>", "<in>", "s==", "s!=", "s>=", "s<=", "s<", "s>"}
	numericOps = []string{"==", "!=", ">=", "<=", "=", "<", ">"}
)

// hint is one parsed root device hint.
type hint struct {
	key    string
	kind   hintKind
	op     string
	values []string  // lower-cased (strings)
	nums   []float64 // size in GiB
	flag   bool      // rotational
}

// RootDeviceHints is a parsed, validated set of hints; a disk must match all.
type RootDeviceHints []hint

// ParseRootDeviceHints validates a node's properties/root_device the way
// Ironic does: known keys only; strings compared case-insensitively with an
// optional operator (s==, s!=, s<, s<=, s>, s>=, <in>, <all-in>, <or>; plain
// means s==); size a positive integer in GiB with ==, !=, <, <=, >, >=, =
// (meaning >=) or <or> (plain means ==); rotational a boolean.
func ParseRootDeviceHints(raw map[string]any) (RootDeviceHints, error) {
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out RootDeviceHints
	for _, k := range keys {
		kind, ok := validHints[k]
		if !ok {
			return nil, fmt.Errorf("parse root device hints: unknown hint %q (valid: by_path, hctl, model, name, rotational, serial, size, vendor, wwn, wwn_vendor_extension, wwn_with_extension)", k)
		}
		h, err := parseHint(k, kind, raw[k])
		if err != nil {
			return nil, fmt.Errorf("parse root device hints: %w", err)
		}
		out = append(out, h)
	}
	return out, nil
}

func parseHint(key string, kind hintKind, v any) (hint, error) {
	h := hint{key: key, kind: kind}
	switch kind {
	case hintBool:
		b, err := parseBoolHint(v)
		if err != nil {
			return h, fmt.Errorf("hint %s: %w", key, err)
		}
		h.flag = b
		return h, nil
	case hintSize:
		var expr string
		switch x := v.(type) {
		case string:
			expr = x
		case float64:
			expr = strconv.FormatFloat(x, 'f', -1, 64)
		case int:
			expr = strconv.Itoa(x)
		case int64:
			expr = strconv.FormatInt(x, 10)
		case json.Number:
			expr = x.String()
		default:
			return h, fmt.Errorf("hint size: %T is not an integer", v)
		}
		op, vals, err := splitExpr(expr, numericOps)
		if err != nil {
			return h, fmt.Errorf("hint size: %w", err)
		}
		h.op = op
		for _, s := range vals {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n <= 0 {
				return h, fmt.Errorf("hint size: %q is not a positive integer", s)
			}
			h.nums = append(h.nums, float64(n))
		}
		if h.op == "" {
			h.op = "=="
		}
		if h.op != "<or>" && len(h.nums) != 1 {
			return h, fmt.Errorf("hint size: operator %s takes one value", h.op)
		}
		return h, nil
	}
	s, ok := v.(string)
	if !ok {
		return h, fmt.Errorf("hint %s: %T is not a string", key, v)
	}
	op, vals, err := splitExpr(s, stringOps)
	if err != nil {
		return h, fmt.Errorf("hint %s: %w", key, err)
	}
	if op == "" {
		op = "s=="
	}
	if op == "<all-in>" {
		vals = strings.Fields(strings.Join(vals, " "))
	}
	if op != "<or>" && op != "<all-in>" && len(vals) != 1 {
		return h, fmt.Errorf("hint %s: operator %s takes one value", key, op)
	}
	if key == "name" {
		for i, val := range vals {
			if !strings.HasPrefix(val, "/dev/") && (op == "s==" || op == "s!=" || op == "<or>") {
				vals[i] = "/dev/" + val
			}
		}
	}
	h.op, h.values = op, vals
	return h, nil
}

// splitExpr splits "[op] value" or "<or> a <or> b" into the operator ("" if
// none) and lower-cased, trimmed values.
func splitExpr(expr string, ops []string) (string, []string, error) {
	e := strings.ToLower(strings.TrimSpace(expr))
	if e == "" {
		return "", nil, fmt.Errorf("empty expression")
	}
	if strings.HasPrefix(e, "<or>") {
		var vals []string
		for _, part := range strings.Split(e, "<or>") {
			if p := strings.TrimSpace(part); p != "" {
				vals = append(vals, p)
			}
		}
		if len(vals) == 0 {
			return "", nil, fmt.Errorf("<or> without values")
		}
		return "<or>", vals, nil
	}
	for _, op := range ops {
		if rest, ok := strings.CutPrefix(e, op); ok {
			rest = strings.TrimSpace(rest)
			if rest == "" {
				return "", nil, fmt.Errorf("operator %s without a value", op)
			}
			return op, []string{rest}, nil
		}
	}
	return "", []string{e}, nil
}

// parseBoolHint accepts what oslo's bool_from_string(strict=True) does.
func parseBoolHint(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "1", "t", "true", "on", "y", "yes":
			return true, nil
		case "0", "f", "false", "off", "n", "no":
			return false, nil
		}
		return false, fmt.Errorf("%q is not a boolean", x)
	case float64:
		if x == 0 || x == 1 {
			return x == 1, nil
		}
	}
	return false, fmt.Errorf("%v is not a boolean", v)
}

// Match reports whether d satisfies every hint.
func (hs RootDeviceHints) Match(d Disk) bool {
	for _, h := range hs {
		if !h.match(d) {
			return false
		}
	}
	return true
}

func (h hint) match(d Disk) bool {
	switch h.kind {
	case hintBool:
		return d.Rotational == h.flag
	case hintSize:
		size := float64(d.Size) / gib
		switch h.op {
		case "==":
			return size == h.nums[0]
		case "!=":
			return size != h.nums[0]
		case ">=", "=":
			return size >= h.nums[0]
		case "<=":
			return size <= h.nums[0]
		case ">":
			return size > h.nums[0]
		case "<":
			return size < h.nums[0]
		case "<or>":
			for _, n := range h.nums {
				if size == n {
					return true
				}
			}
		}
		return false
	}
	v := strings.ToLower(strings.TrimSpace(diskField(d, h.key)))
	if v == "" {
		return false // IPA skips devices without the attribute
	}
	want := h.values[0]
	switch h.op {
	case "s==":
		return v == want
	case "s!=":
		return v != want
	case "s<":
		return v < want
	case "s<=":
		return v <= want
	case "s>":
		return v > want
	case "s>=":
		return v >= want
	case "<in>":
		return strings.Contains(v, want)
	case "<all-in>":
		for _, w := range h.values {
			if !strings.Contains(v, w) {
				return false
			}
		}
		return true
	case "<or>":
		for _, w := range h.values {
			if v == w {
				return true
			}
		}
	}
	return false
}

func diskField(d Disk, key string) string {
	switch key {
	case "name":
		return d.Name
	case "model":
		return d.Model
	case "vendor":
		return d.Vendor
	case "serial":
		return d.Serial
	case "wwn":
		return d.WWN
	case "wwn_with_extension":
		return d.WWNWithExtension
	case "wwn_vendor_extension":
		return d.WWNVendorExtension
	case "hctl":
		return d.HCTL
	case "by_path":
		return d.ByPath
	}
	return ""
}

// ChooseRootDevice picks the disk to deploy to. With hints, the first disk
// (in the given order) matching all of them; without, the smallest disk of
// at least 4 GiB, ties broken by name, like IPA. The error lists the
// candidates so last_error shows what the node has.
func ChooseRootDevice(disks []Disk, hints map[string]any) (Disk, error) {
	if len(hints) == 0 {
		sorted := append([]Disk(nil), disks...)
		sort.SliceStable(sorted, func(i, j int) bool {
			if sorted[i].Size != sorted[j].Size {
				return sorted[i].Size < sorted[j].Size
			}
			return sorted[i].Name < sorted[j].Name
		})
		for _, d := range sorted {
			if d.Size >= minRootSize {
				return d, nil
			}
		}
		return Disk{}, fmt.Errorf("%w: no root device hints and no disk of at least %d bytes; candidates: %s", ErrNoDevice, int64(minRootSize), describeDisks(disks))
	}
	hs, err := ParseRootDeviceHints(hints)
	if err != nil {
		return Disk{}, err
	}
	for _, d := range disks {
		if hs.Match(d) {
			return d, nil
		}
	}
	b, _ := json.Marshal(hints)
	return Disk{}, fmt.Errorf("%w: no disk matches root device hints %s; candidates: %s", ErrNoDevice, b, describeDisks(disks))
}

func describeDisks(disks []Disk) string {
	if len(disks) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(disks))
	for _, d := range disks {
		s := fmt.Sprintf("%s (%s", d.Name, formatGiB(d.Size))
		for _, kv := range [][2]string{{"model", d.Model}, {"vendor", d.Vendor}, {"serial", d.Serial}, {"wwn", d.WWN}, {"hctl", d.HCTL}} {
			if kv[1] != "" {
				s += fmt.Sprintf(", %s=%s", kv[0], kv[1])
			}
		}
		s += fmt.Sprintf(", rotational=%t)", d.Rotational)
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func formatGiB(n int64) string {
	g := float64(n) / gib
	if g == math.Trunc(g) {
		return fmt.Sprintf("%d GiB", int64(g))
	}
	return fmt.Sprintf("%.2f GiB", g)
}
