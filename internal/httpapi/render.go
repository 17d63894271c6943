package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ironwork/ironwork"
)

// kv is one member of an ordered JSON object.
type kv struct {
	k string
	v any
}

// object is a JSON object that keeps its members in order.
type object []kv

func (o object) MarshalJSON() ([]byte, error) { return appendJSON(nil, o) }

// writeJSON sends v as the JSON body of the response, encoded into a recycled buffer (a page of
// 1000 detailed nodes is a few MiB).
func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) error {
	bp := s.buffer()
	defer s.recycle(bp)
	body, err := appendJSON((*bp)[:0], v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	*bp = body
	return writeBody(w, status, body)
}

// writeBody sends body, already encoded JSON, as the response.
func writeBody(w http.ResponseWriter, status int, body []byte) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, err := w.Write(body)
	return err
}

// buffer returns a recycled buffer for a response; recycle gives it back.
func (s *Server) buffer() *[]byte {
	if bp, _ := s.bufs.Get().(*[]byte); bp != nil {
		return bp
	}
	b := make([]byte, 0, 64<<10)
	return &b
}

// recycle keeps a buffer for later responses, unless it grew past 32 MiB.
func (s *Server) recycle(bp *[]byte) {
	if cap(*bp) <= 32<<20 {
		*bp = (*bp)[:0]
		s.bufs.Put(bp)
	}
}

// link is an Ironic link object.
type link struct {
	Href string `json:"href"`
	Rel  string `json:"rel"`
}

// links returns the self and bookmark links of a resource path such as "nodes/<uuid>".
func links(base, path string) []link {
	return []link{{Href: base + "/v1/" + path, Rel: "self"}, {Href: base + "/" + path, Rel: "bookmark"}}
}

// isoTime formats a time as Python's isoformat() of an aware UTC datetime.
func isoTime(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()/1000 == 0 {
		return t.Format("2006-01-02T15:04:05") + "+00:00"
	}
	return t.Format("2006-01-02T15:04:05.000000") + "+00:00"
}

// nodeLinks are the self and bookmark links of a node path, nodes/<uuid><sub>, as links gives
// them; appendJSON writes them without building the strings (a list has five per node).
type nodeLinks struct{ base, uuid, sub string }

func (l nodeLinks) appendJSON(b []byte) []byte {
	if !plainText(l.base) || !plainText(l.uuid) || !plainText(l.sub) {
		out, _ := appendJSON(b, links(l.base, "nodes/"+l.uuid+l.sub))
		return out
	}
	b = append(b, `[{"href":"`...)
	b = append(b, l.base...)
	b = append(b, "/v1/nodes/"...)
	b = append(b, l.uuid...)
	b = append(b, l.sub...)
	b = append(b, `","rel":"self"},{"href":"`...)
	b = append(b, l.base...)
	b = append(b, "/nodes/"...)
	b = append(b, l.uuid...)
	b = append(b, l.sub...)
	return append(b, `","rel":"bookmark"}]`...)
}

// plainText reports whether appendString writes s as it is between quotes: printable ASCII
// without the characters it escapes.
func plainText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

func optTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return isoTime(*t)
}

func optStr[S ~string](s S) any {
	if s == "" {
		return nil
	}
	return string(s)
}

func optBool(b *bool) any {
	if b == nil {
		return nil
	}
	return *b
}

func obj(o ironwork.JSONObject) ironwork.JSONObject {
	if o == nil {
		return ironwork.JSONObject{}
	}
	return o
}

// Masked is the placeholder shown instead of a secret.
const Masked = ironwork.Masked

// maskSecrets returns a copy of o with its secrets hidden by Ironic's rules (ironwork.MaskSecrets:
// secret members, secrets inside strings, nested objects and lists, passwords in URLs).
func maskSecrets(o ironwork.JSONObject) ironwork.JSONObject { return ironwork.MaskSecrets(o) }

// decodeBody decodes a JSON request body into a generic object, with Ironic's errors for a
// missing, malformed or oversized body. The body passes the central checks of input.go: valid
// UTF-8, no NUL character, numbers within range, bounded nesting.
func decodeBody(r *http.Request, kind string) (map[string]any, error) {
	raw, err := readBody(r)
	if err != nil {
		return nil, err
	}
	v, err := decodeChecked(raw)
	if err != nil {
		return nil, err
	}
	body, ok := v.(map[string]any)
	if !ok {
		return nil, invalid("Schema error for %s: %s is not of type 'object'", kind, pyRepr(v))
	}
	return body, nil
}

// jsonType names the JSON type of a decoded value as Python's jsonschema would.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number, float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	}
	return "object"
}

func pyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return "'" + x + "'"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// parseBool accepts the values oslo's strict bool_from_string accepts.
func parseBool(name, s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "t", "true", "on", "y", "yes":
		return true, nil
	case "0", "f", "false", "off", "n", "no":
		return false, nil
	}
	return false, invalid("Invalid %s: Unrecognized value '%s', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'", name, s)
}

func atoi(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil
}
