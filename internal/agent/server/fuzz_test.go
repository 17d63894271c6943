package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzCommandRequest: arbitrary bodies and query strings never panic and never get a 5xx.
func FuzzCommandRequest(f *testing.F) {
	f.Add("agent_token="+testToken+"&wait=true", `{"name":"test.ok","params":{"a":1}}`)
	f.Add("agent_token="+testToken, `{"name":"standby.prepare_image","params":{"image_info":{"urls":["http://x"]}}}`)
	f.Add("agent_token=x", `{}`)
	f.Add("wait=maybe&agent_token="+testToken, `{"name":`)
	f.Add("agent_token="+testToken+"&wait=1", `{"name":"test.ok","params":null}`)
	f.Add("agent_token="+testToken, `{"name":"test.ok","params":{"x":[1,{"y":"`+strings.Repeat("z", 2000)+`"}]}}`)
	s := New(Config{Token: testToken, MaxBody: 1 << 16, Commands: map[string]Command{
		"test.ok": {Run: func(_ context.Context, p map[string]any, _ ProgressFunc) (any, error) { return p, nil }, Sync: true},
	}})
	f.Cleanup(s.Close)
	f.Fuzz(func(t *testing.T, query, body string) {
		for _, target := range []string{"/v1/commands/?", "/v1/commands/x?", "/v1/status?"} {
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
			req.URL.Path = strings.TrimSuffix(target, "?")
			req.URL.RawQuery = query
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("%s%s body %q: status %d: %s", target, query, body, rec.Code, rec.Body)
			}
		}
	})
}
