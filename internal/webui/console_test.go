package webui_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/crypto/bcrypt"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/server"
)

// TestConsoleWebsocketChecks checks what the node page's terminal relies on, without a browser:
// the console actions go through the API (and are refused as the API refuses them), the
// websocket is refused to another site's page and to a client without credentials, and a
// same-site client with credentials reads the fake console's banner and echo.
func TestConsoleWebsocketChecks(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(file, []byte("admin:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := start(t, func(c *server.Config) { c.AuthStrategy, c.HTTPBasicAuthFile = "http_basic", file })
	c := &api.Client{BaseURL: srv.URL(), Username: "admin", Password: "s3cret"}
	ctx := context.Background()
	var n map[string]any
	if err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "tty", "driver": "fake-hardware", "console_interface": "fake"}, &n); err != nil {
		t.Fatal(err)
	}
	uuid := n["uuid"].(string)
	if err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "mute", "driver": "fake-hardware", "console_interface": "no-console"}, nil); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, srv.URL())
	b.user, b.pass = "admin", "s3cret"
	_, _, page := b.do(http.MethodGet, "/ui/nodes/mute", nil, nil)
	if !strings.Contains(page, `id="console-none"`) || strings.Contains(page, `id="console-term"`) {
		t.Errorf("the page of a node without a console offers a terminal")
	}
	token := csrfRE.FindStringSubmatch(page)[1]
	form := url.Values{"action": {"console-on"}, "confirm": {"yes"}, "csrf_token": {token}}
	if status, _, body := b.do(http.MethodPost, "/ui/nodes/mute/actions", form, nil); status != http.StatusBadRequest || !strings.Contains(body, "does not support console") {
		t.Errorf("console-on without a console: %d\n%s", status, body)
	}
	if status, _, body := b.do(http.MethodPost, "/ui/nodes/tty/actions", form, nil); status != http.StatusSeeOther {
		t.Fatalf("console-on: %d\n%s", status, body)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var st map[string]any
		if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+uuid+"/states/console", nil, &st); err != nil {
			t.Fatal(err)
		}
		if st["console_enabled"] == true && st["console_info"] != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the console is not enabled: %v", st)
		}
	}
	wsURL := "ws" + strings.TrimPrefix(srv.URL(), "http") + "/v1/nodes/" + uuid + "/console/ws"
	auth := http.Header{"Authorization": {"Basic " + basic("admin", "s3cret")}}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name   string
		header http.Header
		status int
	}{
		{"no credentials", http.Header{"Origin": {srv.URL()}}, http.StatusUnauthorized},
		{"another site", http.Header{"Origin": {"http://evil.example"}, "Authorization": auth["Authorization"]}, http.StatusForbidden},
	} {
		ws, resp, err := websocket.Dial(dctx, wsURL, &websocket.DialOptions{HTTPHeader: tc.header})
		if err == nil {
			ws.CloseNow()
			t.Errorf("%s: the websocket was accepted", tc.name)
			continue
		}
		if resp == nil || resp.StatusCode != tc.status {
			t.Errorf("%s: %v %v, want %d", tc.name, resp, err, tc.status)
		}
	}
	h := auth.Clone()
	h.Set("Origin", srv.URL())
	ws, _, err := websocket.Dial(dctx, wsURL, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("same site with credentials: %v", err)
	}
	defer ws.CloseNow()
	if err := ws.Write(dctx, websocket.MessageText, []byte("\r")); err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	want := "fake serial console of node " + uuid
	for !strings.Contains(got.String(), want) {
		typ, p, err := ws.Read(dctx)
		if err != nil {
			t.Fatalf("read the console: %v (read %q)", err, got.String())
		}
		if typ != websocket.MessageBinary {
			t.Errorf("a %v message, want binary", typ)
		}
		got.Write(p)
	}
	ws.Close(websocket.StatusNormalClosure, "")
}

func basic(user, pass string) string {
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	req.SetBasicAuth(user, pass)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}
