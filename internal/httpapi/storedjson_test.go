package httpapi

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/ironwork/ironwork"
)

// decodeStored decodes a stored JSON object as the store does (sqlstore's jsonCol: numbers out
// of float64's range kept as json.Number).
func decodeStored(raw string) (ironwork.JSONObject, error) {
	var m ironwork.JSONObject
	if err := json.Unmarshal([]byte(raw), &m); err == nil {
		return m, nil
	}
	d := json.NewDecoder(strings.NewReader(raw))
	d.UseNumber()
	var v map[string]any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, strconv.ErrSyntax
	}
	var conv func(any) any
	conv = func(v any) any {
		switch x := v.(type) {
		case json.Number:
			if f, err := strconv.ParseFloat(string(x), 64); err == nil {
				return f
			}
		case map[string]any:
			for k, e := range x {
				x[k] = conv(e)
			}
		case []any:
			for i, e := range x {
				x[i] = conv(e)
			}
		}
		return v
	}
	return conv(v).(map[string]any), nil
}

// checkStored checks appendStored, in every mask mode, against the decode-and-encode path
// on raw.
func checkStored(t *testing.T, raw string) {
	t.Helper()
	m, err := decodeStored(raw)
	for _, mode := range []maskMode{maskNone, maskAll, maskInstance} {
		got, ok := appendStored([]byte("prefix"), raw, mode)
		if !ok {
			continue
		}
		if err != nil {
			t.Fatalf("appendStored copies %q, which does not decode: %v", raw, err)
		}
		var v ironwork.JSONObject
		switch mode {
		case maskNone:
			v = obj(m)
		case maskAll:
			v = maskSecrets(obj(m))
		case maskInstance:
			v = maskInstanceInfo(m)
		}
		want, err := appendJSON([]byte("prefix"), v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("appendStored(%q, mode %d)\n got %s\nwant %s", raw, mode, got, want)
		}
	}
}

var storedSamples = []string{
	`{}`, ` { } `, `{"a":1}`, `{"b":1,"a":2}`, `{"a":1,"a":2}`, `{"a":{"c":[1,2,{"z":null,"y":true}],"b":false}}`,
	`{"n":1e400}`, `{"n":-0}`, `{"n":0}`, `{"n":-12}`, `{"n":123456789012345}`, `{"n":1234567890123456}`,
	`{"n":1.5}`, `{"n":1234567.5}`, `{"n":1e20}`, `{"n":1E5}`, `{"n":0.10}`, `{"n":1e-7}`, `{"n":01}`, `{"n":1.}`,
	`{"n":-}`, `{"n":2.5e+3}`, `{"s":"<b>&amp;"}`, `{"s":"\u003cb\u003e"}`, `{"s":"a\nb\u0001\b\f"}`,
	"{\"s\":\"\u2028x\u2029\"}", "{\"s\":\"\xff\xfe\"}", `{"s":"ünï"}`, `{"\u0061":1}`, `{"s":"\ud800"}`,
	`{"ipmi_password":"x"}`, `{"x":"password=abc"}`, `{"u":"http://a:b@h/"}`, `{"image_url":"http://h/i"}`,
	`{"configdrive":"abc"}`, `{"Token":1}`, `{"k":"\u0070assword=1"}`, `{"snmp_auth_KEY":"x"}`, `{"KELVIN":"\u212a"}`,
	`{"configdrive":null,"image_url":"","x":{"image_url":"h","pw":"a password=1"}}`, `{"image_url":null}`,
	`{"a":[{"secret":1},"--token t",["admin_pass=2"]]}`, `{"\u0070assword":"x","b":"\u0040"}`,
	`[1]`, `null`, `"s"`, `{`, `{"a":1}x`, `{"a":1,}`, `{"a" 1}`, `{"a":[1,]}`, `{"a":tru}`, `{"a":"x}`,
}

func TestAppendStoredMatchesDecodeEncode(t *testing.T) {
	for _, raw := range storedSamples {
		checkStored(t, raw)
	}
	// The common stored forms must take the copy, not the decode.
	for _, raw := range []string{`{}`, `{"cpu_arch":"x86_64","cpus":8,"local_gb":500,"memory_mb":32768}`,
		`{"a":{"b":[1,"x",null,true,2.5]}}`} {
		if _, ok := appendStored(nil, raw, maskAll); !ok {
			t.Errorf("appendStored(%q) gives up", raw)
		}
	}
}

func FuzzAppendStored(f *testing.F) {
	for _, s := range storedSamples {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) { checkStored(t, raw) })
}

func TestNodeLinksMatchLinks(t *testing.T) {
	for _, base := range []string{"http://127.0.0.1:6385", "https://h.example/bm", "http://a<b>&\"c", "http://ü.example", "http://x\u2028"} {
		for _, sub := range []string{"", "/ports", "/states"} {
			got := nodeLinks{base, "1be26c0b-03f2-4d2e-ae87-c02d7f33c123", sub}.appendJSON(nil)
			want, _ := appendJSON(nil, links(base, "nodes/1be26c0b-03f2-4d2e-ae87-c02d7f33c123"+sub))
			if !bytes.Equal(got, want) {
				t.Errorf("base %q sub %q:\n got %s\nwant %s", base, sub, got, want)
			}
		}
	}
}
