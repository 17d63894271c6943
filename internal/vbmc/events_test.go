package vbmc

import (
	"strings"
	"testing"
)

func TestParseSubscription(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"Destination": "https://h.example/e", "EventTypes": ["Alert"], "Context": "c", "Protocol": "Redfish", "HttpHeaders": [{"A": "b"}]}`, ""},
		{`{"Destination": "ftp://h.example/e"}`, "is not an http or https URL"},
		{`{}`, "is not an http or https URL"},
		{`{"Destination": "https://h/", "Protocol": "SNMPv2c"}`, "only Redfish"},
		{`{"Destination": "https://h/", "EventTypes": ["Bogus"]}`, `"Bogus" is not one of`},
		{`{"Destination": "https://h/", "HttpHeaders": "x"}`, "property HttpHeaders"},
		{`{"Destination": "https://h/", "Context": "` + strings.Repeat("x", 257) + `"}`, "longer than 256"},
		{`{"Destination": "https://h/", "Evil": 1}`, "property Evil is not known"},
		{`[1]`, "malformed JSON"},
	} {
		_, err := parseSubscription(strings.NewReader(tc.body))
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%.60s: %v, want %q", tc.body, err, tc.want)
		}
	}
}

// FuzzParseSubscription: a subscription body never panics the parser, and one it accepts has
// an http(s) destination and only offered event types.
func FuzzParseSubscription(f *testing.F) {
	f.Add(`{"Destination": "https://h.example/e", "EventTypes": ["Alert"], "Context": "c"}`)
	f.Add(`{"Destination": "http://[::1]:8/x", "HttpHeaders": [{"A": "b"}]}`)
	f.Add(`{"Destination": 3}`)
	f.Fuzz(func(t *testing.T, body string) {
		sub, err := parseSubscription(strings.NewReader(body))
		if err != nil {
			return
		}
		if !strings.HasPrefix(strings.ToLower(sub.destination), "http") { // schemes are case-insensitive
			t.Errorf("accepted destination %q", sub.destination)
		}
		for _, e := range sub.eventTypes {
			if !strings.Contains(strings.Join(eventTypes, ","), e) {
				t.Errorf("accepted event type %q", e)
			}
		}
	})
}
