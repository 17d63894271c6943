package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ironwork/ironwork"
)

// Every value the API accepts must be a value the store can keep and give back: these checks
// run once, centrally, on the path, the query string and every JSON body, before any handler
// sees them. PostgreSQL refuses NUL characters in text, encoding/json silently replaces invalid
// UTF-8, and a number beyond float64 decodes nowhere; all three are refused here with a 400.

// maxJSONDepth bounds the nesting of a request body. Nothing Ironic stores nests deeply; a
// document nested thousands of levels deep is an attack on every later reader.
const maxJSONDepth = 64

// checkText refuses a string that the store cannot keep: one with a NUL character or invalid
// UTF-8. what names the string in the error.
func checkText(what, s string) error {
	if !utf8.ValidString(s) {
		return invalid("Invalid %s: it is not valid UTF-8.", what)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return invalid("Invalid %s: it contains a NUL character.", what)
	}
	return nil
}

// checkRequestTarget validates the request's path and query string: no NUL or invalid UTF-8 in
// any identifier, parameter name or value; no query string that Go's parser would partly drop
// (a ';' separator, a bad escape, more parameters than it accepts), since a dropped filter
// silently widens a list; no path that the router would rewrite with a redirect.
func checkRequestTarget(r *http.Request) error {
	if err := checkText("path", r.URL.Path); err != nil {
		return err
	}
	if p := r.URL.Path; p != "/v1/" && p != "/" && path.Clean(p) != p {
		return ironwork.Errorf(ironwork.ENOTFOUND, "The resource could not be found.")
	}
	if r.URL.RawQuery == "" {
		return nil
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return invalid("Invalid query string: %s.", err.Error())
	}
	for k, vs := range q {
		if err := checkText("query parameter name", k); err != nil {
			return err
		}
		for _, v := range vs {
			if err := checkText("value of query parameter "+strconv.Quote(k), v); err != nil {
				return err
			}
		}
	}
	return nil
}

// readBody reads a request body, capped by the server's MaxBytesReader, and checks that it is
// valid UTF-8.
func readBody(r *http.Request) ([]byte, error) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, ironwork.Errorf(ironwork.ETOOLARGE, "Request body is larger than %d bytes.", tooBig.Limit)
		}
		return nil, invalid("Cannot read the request body: %s.", err.Error())
	}
	if !utf8.Valid(raw) {
		return nil, invalid("Invalid request body: it is not valid UTF-8.")
	}
	return raw, nil
}

// decodeChecked decodes a JSON document, keeping numbers as json.Number, and checks every
// member name and value with checkJSON.
func decodeChecked(raw []byte) (any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, invalid("The request body is empty: a JSON document is required.")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, invalid("Invalid JSON in request body: %s.", err.Error())
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalid("Invalid JSON in request body: unexpected data after the document.")
	}
	if hasLoneSurrogate(raw) {
		return nil, invalid("Invalid request body: a \\u escape names half of a UTF-16 surrogate pair.")
	}
	if err := checkJSON("", v, 0); err != nil {
		return nil, err
	}
	return v, nil
}

// hasLoneSurrogate reports whether a valid JSON text has a \u escape of a UTF-16 surrogate that
// is not part of a pair. encoding/json silently turns those into U+FFFD; we refuse them as we
// refuse invalid UTF-8. Backslashes occur only inside strings in valid JSON, so no string
// tracking is needed.
func hasLoneSurrogate(raw []byte) bool {
	if !bytes.Contains(raw, []byte(`\u`)) {
		return false
	}
	for i := 0; i+1 < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		if raw[i+1] != 'u' {
			i++ // an escaped character, possibly a backslash
			continue
		}
		r, ok := hex4(raw[i+2:])
		if !ok {
			return false // not valid JSON; the decoder has refused it already
		}
		i += 5
		switch {
		case r >= 0xdc00 && r <= 0xdfff:
			return true
		case r >= 0xd800 && r <= 0xdbff:
			if i+6 >= len(raw) || raw[i+1] != '\\' || raw[i+2] != 'u' {
				return true
			}
			lo, ok := hex4(raw[i+3:])
			if !ok || lo < 0xdc00 || lo > 0xdfff {
				return true
			}
			i += 6
		}
	}
	return false
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[:4]), 16, 32)
	return rune(n), err == nil
}

// checkJSON walks a decoded document: every string (member names included) must be storable
// text, every number must fit a float64, and nesting is bounded. at is the JSON pointer of v,
// used to name the offending field.
func checkJSON(at string, v any, depth int) error {
	if depth > maxJSONDepth {
		return invalid("Invalid request body: nested more than %d levels deep at %s.", maxJSONDepth, pointerOrRoot(at))
	}
	switch x := v.(type) {
	case string:
		return checkText("value of "+pointerOrRoot(at), x)
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil || f != f {
			return invalid("Invalid value of %s: the number %s is out of range.", pointerOrRoot(at), truncate(string(x), 40))
		}
	case map[string]any:
		for k, m := range x {
			name := at + "/" + escapePointer(k)
			if err := checkText("member name "+strconv.Quote(truncate(k, 64)), k); err != nil {
				return err
			}
			if err := checkJSON(name, m, depth+1); err != nil {
				return err
			}
		}
	case []any:
		for i, m := range x {
			if err := checkJSON(at+"/"+strconv.Itoa(i), m, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

func pointerOrRoot(at string) string {
	if at == "" {
		return "the body"
	}
	return truncate(at, 128)
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// truncate shortens s to at most n bytes (on a rune boundary) for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
