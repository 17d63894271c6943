package webui_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/server"
)

// TestBrowserSerialConsoleWithAuth: with basic authentication on, the credentials the
// browser was given for the page (here in the URL, answered to the server's challenge) are the
// ones its events stream and console websocket send: the terminal connects and echoes.
func TestBrowserSerialConsoleWithAuth(t *testing.T) {
	ctx := newChromium(t)
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
	uuid := enrolAs(t, c, "tty-auth")
	// Generous bounds: in CI this runs beside the QEMU lab and the race detector (load above 20).
	step, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	base := strings.Replace(srv.URL(), "http://", "http://admin:s3cret@", 1)
	if err := chromedp.Do(step, chromedp.Navigate(base+"/ui/nodes/tty-auth"), chromedp.WaitVisible(chromedp.CSS("#live.on"))); err != nil {
		t.Fatalf("node page: %v", err)
	}
	if err := chromedp.Do(step, chromedp.Click(chromedp.CSS(`button[data-action="console-on"]`)), chromedp.WaitVisible(chromedp.CSS("#confirm"))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.RunResponse(step, chromedp.Click(chromedp.CSS("#confirm-yes"))); err != nil {
		t.Fatalf("confirm: %v", err)
	}
	if _, err := chromedp.Run(step, chromedp.Poll[bool](`!document.getElementById("console-connect").disabled`, chromedp.WithPollingTimeout(90*time.Second))); err != nil {
		t.Fatalf("the console is not shown enabled: %v", err)
	}
	if err := chromedp.Do(step, chromedp.Click(chromedp.ID("console-connect"))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(step, chromedp.Poll[bool](`document.getElementById("console-status").textContent.startsWith("connected")`,
		chromedp.WithPollingTimeout(90*time.Second))); err != nil {
		text, _ := chromedp.Run(step, chromedp.Text(chromedp.ID("console-status")))
		t.Fatalf("the terminal did not connect with basic auth: %q: %v", text, err)
	}
	if err := chromedp.Do(step, chromedp.SendKeys(chromedp.ID("console-term"), "\r")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(step, chromedp.Poll[bool](`document.getElementById("console-term").textContent.includes(`+jsString("fake serial console of node "+uuid)+`)`,
		chromedp.WithPollingTimeout(90*time.Second))); err != nil {
		t.Fatalf("no banner: %v", err)
	}
}

func enrolAs(t *testing.T, c *api.Client, name string) string {
	t.Helper()
	var n map[string]any
	if err := c.Do(context.Background(), http.MethodPost, "/v1/nodes", map[string]any{"name": name, "driver": "fake-hardware", "console_interface": "fake"}, &n); err != nil {
		t.Fatal(err)
	}
	return n["uuid"].(string)
}
