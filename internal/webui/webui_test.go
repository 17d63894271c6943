package webui_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/server"
)

// start runs a whole server (API, conductor, console) on loopback with SQLite.
func start(t testing.TB, mutate ...func(*server.Config)) *server.Server {
	t.Helper()
	cfg := server.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.Database = "sqlite://" + filepath.Join(cfg.DataDir, "db")
	cfg.Hostname = "ui-conductor"
	f := false
	cfg.AutomatedClean = &f
	for _, m := range mutate {
		m(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.Start(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatalf("start server: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("server did not stop within 15 s")
		}
		srv.Close()
	})
	return srv
}

type browser struct {
	t    *testing.T
	base string
	hc   *http.Client
	user string
	pass string
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (b *browser) do(method, path string, form url.Values, header map[string]string) (int, http.Header, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if b.user != "" {
		req.SetBasicAuth(b.user, b.pass)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(raw)
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([0-9a-f]{64})"`)

func enrol(t *testing.T, c *api.Client, name string, body map[string]any) string {
	t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	body["name"], body["driver"] = name, "fake-hardware"
	var n map[string]any
	if err := c.Do(context.Background(), http.MethodPost, "/v1/nodes", body, &n); err != nil {
		t.Fatal(err)
	}
	return n["uuid"].(string)
}

func waitState(t *testing.T, c *api.Client, uuid, want string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		var n map[string]any
		if err := c.Do(context.Background(), http.MethodGet, "/v1/nodes/"+uuid, nil, &n); err != nil {
			t.Fatal(err)
		}
		if n["provision_state"] == want && n["target_provision_state"] == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s is %v, want %s", uuid, n["provision_state"], want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestFleetPageCountsAndFilters(t *testing.T) {
	srv := start(t)
	c := &api.Client{BaseURL: srv.URL()}
	for _, n := range []string{"rack1-a", "rack1-b", "rack2-a"} {
		enrol(t, c, n, nil)
	}
	uuid := enrol(t, c, "rack2-b", nil)
	if err := c.Do(context.Background(), http.MethodPut, "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": "manage"}, nil); err != nil {
		t.Fatal(err)
	}
	waitState(t, c, uuid, "manageable")
	b := newBrowser(t, srv.URL())
	status, _, page := b.do(http.MethodGet, "/ui/", nil, nil)
	if status != http.StatusOK {
		t.Fatalf("GET /ui/: %d\n%s", status, page)
	}
	for _, want := range []string{`<span class="state">enroll</span> <b>3</b>`, `<span class="state">manageable</span> <b>1</b>`,
		`<span id="total">4</span>`, "rack1-a", "rack2-b"} {
		if !strings.Contains(page, want) {
			t.Errorf("the fleet page lacks %q", want)
		}
	}
	_, _, page = b.do(http.MethodGet, "/ui/?q=RACK2", nil, nil)
	if strings.Contains(page, "rack1-a") || !strings.Contains(page, "rack2-a") || !strings.Contains(page, "rack2-b") {
		t.Errorf("search rack2 shows the wrong nodes")
	}
	_, _, page = b.do(http.MethodGet, "/ui/?state=manageable", nil, nil)
	if strings.Count(page, "<tr data-uuid=") != 1 || !strings.Contains(page, "rack2-b") {
		t.Errorf("the manageable filter shows the wrong nodes")
	}
	if status, hdr, _ := b.do(http.MethodGet, "/ui", nil, nil); status != http.StatusMovedPermanently || hdr.Get("Location") != "/ui/" {
		t.Errorf("GET /ui: %d %s, want a redirect to /ui/", status, hdr.Get("Location"))
	}
	if status, _, _ := b.do(http.MethodGet, "/ui/static/app.js", nil, nil); status != http.StatusOK {
		t.Errorf("app.js: %d", status)
	}
	if status, _, page := b.do(http.MethodGet, "/ui/nodes/nope", nil, nil); status != http.StatusNotFound || !strings.Contains(page, "nope could not be found") {
		t.Errorf("an unknown node: %d\n%s", status, page)
	}
}

func TestNodePageMasksSecretsAndActionsNeedToken(t *testing.T) {
	srv := start(t)
	c := &api.Client{BaseURL: srv.URL()}
	uuid := enrol(t, c, "secretive", map[string]any{"driver_info": map[string]any{"ipmi_password": "hunter2-very-secret", "ipmi_address": "10.0.0.9"}})
	if err := c.Do(context.Background(), http.MethodPost, "/v1/ports", map[string]any{"address": "52:54:00:aa:bb:cc", "node_uuid": uuid}, nil); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, srv.URL())
	status, _, page := b.do(http.MethodGet, "/ui/nodes/secretive", nil, nil)
	if status != http.StatusOK {
		t.Fatalf("node page: %d\n%s", status, page)
	}
	if strings.Contains(page, "hunter2") || !strings.Contains(page, "******") || !strings.Contains(page, "10.0.0.9") {
		t.Error("the node page does not mask driver_info as the API does")
	}
	for _, want := range []string{"52:54:00:aa:bb:cc", `id="console-term"`, `data-action="console-on"`, `data-action="deploy"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the node page lacks %q", want)
		}
	}
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no CSRF token in the node page")
	}
	token := m[1]
	path := "/ui/nodes/" + uuid + "/actions"
	// Refused: no token, a wrong token, another site, unconfirmed.
	for _, tc := range []struct {
		name   string
		form   url.Values
		header map[string]string
		status int
	}{
		{"no token", url.Values{"action": {"manage"}, "confirm": {"yes"}}, nil, http.StatusForbidden},
		{"wrong token", url.Values{"action": {"manage"}, "confirm": {"yes"}, "csrf_token": {strings.Repeat("0", 64)}}, nil, http.StatusForbidden},
		{"other origin", url.Values{"action": {"manage"}, "confirm": {"yes"}, "csrf_token": {token}},
			map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{"cross-site fetch", url.Values{"action": {"manage"}, "confirm": {"yes"}, "csrf_token": {token}},
			map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"unconfirmed", url.Values{"action": {"manage"}, "csrf_token": {token}}, nil, http.StatusBadRequest},
		{"unknown action", url.Values{"action": {"fly"}, "confirm": {"yes"}, "csrf_token": {token}}, nil, http.StatusBadRequest},
		{"deploy from enroll", url.Values{"action": {"deploy"}, "confirm": {"yes"}, "csrf_token": {token},
			"image_source": {"http://127.0.0.1:1/img.raw"}}, nil, http.StatusBadRequest},
	} {
		status, _, body := b.do(http.MethodPost, path, tc.form, tc.header)
		if status != tc.status {
			t.Errorf("%s: %d, want %d\n%s", tc.name, status, tc.status, body)
		}
	}
	var n map[string]any
	if err := c.Do(context.Background(), http.MethodGet, "/v1/nodes/"+uuid, nil, &n); err != nil {
		t.Fatal(err)
	}
	if n["provision_state"] != "enroll" {
		t.Fatalf("a refused action changed the node: %v", n["provision_state"])
	}
	status, hdr, body := b.do(http.MethodPost, path, url.Values{"action": {"manage"}, "confirm": {"yes"}, "csrf_token": {token}},
		map[string]string{"Origin": srv.URL(), "Sec-Fetch-Site": "same-origin"})
	if status != http.StatusSeeOther || hdr.Get("Location") != "/ui/nodes/"+uuid+"?done=manage" {
		t.Fatalf("manage: %d %s\n%s", status, hdr.Get("Location"), body)
	}
	waitState(t, c, uuid, "manageable")
	for _, act := range []string{"power-on", "maintenance-on"} {
		form := url.Values{"action": {act}, "confirm": {"yes"}, "csrf_token": {token}, "reason": {"disk swap"}}
		if status, _, body := b.do(http.MethodPost, path, form, nil); status != http.StatusSeeOther {
			t.Fatalf("%s: %d\n%s", act, status, body)
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if err := c.Do(context.Background(), http.MethodGet, "/v1/nodes/"+uuid, nil, &n); err != nil {
			t.Fatal(err)
		}
		if n["power_state"] == "power on" && n["maintenance"] == true && n["maintenance_reason"] == "disk swap" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("power and maintenance not set: %v %v %v", n["power_state"], n["maintenance"], n["maintenance_reason"])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestConsoleNeedsCredentials(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(file, []byte("admin:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := start(t, func(c *server.Config) { c.AuthStrategy, c.HTTPBasicAuthFile = "http_basic", file })
	b := newBrowser(t, srv.URL())
	for _, p := range []string{"/ui/", "/ui/static/app.js", "/ui/nodes/x"} {
		status, hdr, _ := b.do(http.MethodGet, p, nil, nil)
		if status != http.StatusUnauthorized || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("%s without credentials: %d %q", p, status, hdr.Get("WWW-Authenticate"))
		}
	}
	b.user, b.pass = "admin", "wrong"
	if status, _, _ := b.do(http.MethodGet, "/ui/", nil, nil); status != http.StatusUnauthorized {
		t.Errorf("a wrong password: %d", status)
	}
	b.user, b.pass = "admin", "s3cret"
	if status, _, page := b.do(http.MethodGet, "/ui/", nil, nil); status != http.StatusOK || !strings.Contains(page, "Fleet") {
		t.Errorf("with credentials: %d", status)
	}
}
