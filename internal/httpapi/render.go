package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	bp, _ := s.bufs.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, 64<<10)
		bp = &b
	}
	body, err := appendJSON((*bp)[:0], v)
	if err != nil {
		s.bufs.Put(bp)
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, err = w.Write(body)
	if cap(body) <= 32<<20 {
		*bp = body[:0]
		s.bufs.Put(bp)
	}
	return err
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

// secretWords are the fragments of key names whose values are never shown, as oslo's
// mask_dict_password decides.
var secretWords = []string{"password", "passwd", "pswd", "adminpass", "admin_pass", "auth_token", "new_pass",
	"secret", "token", "configdrive", "chappassword", "encrypted_key", "private_key", "fernetkey", "sslkey",
	"passphrase", "snmp_auth_key", "snmp_priv_key"}

// Masked is the placeholder shown instead of a secret.
const Masked = "******"

// isSecretKey reports whether a key name holds a secret.
func isSecretKey(k string) bool {
	k = strings.ToLower(k)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// maskSecrets returns a copy of o with the values of secret keys replaced, recursing into
// nested objects.
func maskSecrets(o ironwork.JSONObject) ironwork.JSONObject {
	out := make(ironwork.JSONObject, len(o))
	for k, v := range o {
		switch {
		case isSecretKey(k):
			out[k] = Masked
		default:
			if m, ok := v.(map[string]any); ok {
				out[k] = maskSecrets(m)
			} else {
				out[k] = v
			}
		}
	}
	return out
}

// decodeBody decodes a JSON request body into a generic object, with Ironic's errors for a
// missing, malformed or oversized body.
func decodeBody(r *http.Request, kind string) (map[string]any, error) {
	var body map[string]any
	if err := decodeJSON(r, &body); err != nil {
		return nil, err
	}
	if body == nil {
		return nil, invalid("Schema error for %s: None is not of type 'object'", kind)
	}
	return body, nil
}

func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return ironwork.Errorf(ironwork.ETOOLARGE, "Request body is too large.")
		}
		if errors.Is(err, io.EOF) {
			return invalid("The request body is empty: a JSON document is required.")
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return invalid("Invalid request body: %s is of the wrong type (%s).", te.Field, te.Value)
		}
		return invalid("Invalid JSON in request body: %s.", err.Error())
	}
	if dec.More() {
		return invalid("Invalid JSON in request body: unexpected data after the document.")
	}
	return nil
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
