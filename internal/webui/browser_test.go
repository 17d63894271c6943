package webui_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/api"
)

// chromium finds Debian's chromium ($IRONWORK_CHROMIUM overrides), or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("IRONWORK_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed (apt-get install chromium, or scripts/deps.sh): skipping the browser tests")
	return ""
}

// artifacts is where the screenshots go: $IRONWORK_UI_ARTIFACTS, or a temporary directory.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("IRONWORK_UI_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// newChromium starts headless chromium with a fresh profile and returns its context.
func newChromium(t *testing.T) context.Context {
	t.Helper()
	exe := chromium(t)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first run starts the browser, and must have no deadline.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	file := filepath.Join(dir, name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", file, len(png))
}

// recorder is run in every new document: it records each text the node page's provision
// state shows, from the first render on, in sessionStorage so that a list survives the
// page load that follows a form's submission. Each entry says whether it came with the page
// ("load") or from a later change of the DOM ("live").
const recorder = `
document.addEventListener("DOMContentLoaded", () => {
  const el = document.getElementById("provision_state");
  if (!el) return;
  const seen = JSON.parse(sessionStorage.getItem("seen") || "[]");
  const add = (how) => {
    const s = el.textContent;
    if (seen.length === 0 || seen[seen.length - 1].state !== s) {
      seen.push({state: s, how: how});
      sessionStorage.setItem("seen", JSON.stringify(seen));
    }
  };
  add("load");
  new MutationObserver(() => add("live")).observe(el, {childList: true, characterData: true, subtree: true});
});
`

type seenState struct {
	State string `json:"state"`
	How   string `json:"how"`
}

// TestBrowserFleetAndDeploy drives the console in headless chromium: the fleet page lists the
// nodes and follows the stream, and a deploy started from the node page (click, confirm)
// reaches active while the page shows each state as it happens.
func TestBrowserFleetAndDeploy(t *testing.T) {
	ctx := newChromium(t)
	dir := artifacts(t)
	srv := start(t)
	c := &api.Client{BaseURL: srv.URL()}
	bg := context.Background()
	names := []string{"web-1", "web-2", "web-3"}
	var uuids []string
	for _, n := range names {
		uuids = append(uuids, enrol(t, c, n, map[string]any{"driver_info": map[string]any{"fake_deploy_delay": 2, "ipmi_password": "not-shown"}}))
	}
	for _, verb := range []struct{ target, state string }{{"manage", "manageable"}, {"provide", "available"}} {
		if err := c.Do(bg, http.MethodPut, "/v1/nodes/"+uuids[0]+"/states/provision", map[string]any{"target": verb.target}, nil); err != nil {
			t.Fatal(err)
		}
		waitState(t, c, uuids[0], verb.state)
	}
	if _, err := chromedp.Run(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: recorder})
		return err
	})); err != nil {
		t.Fatal(err)
	}
	step, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	// The fleet page: every node listed, the stream connected, a change shown live.
	if err := chromedp.Do(step, chromedp.Navigate(srv.URL()+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#live.on"))); err != nil {
		t.Fatalf("fleet page: %v", err)
	}
	rows, err := chromedp.Run(step, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#nodes tbody tr td:first-child")].map(td => td.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rows, names) {
		t.Errorf("the fleet page lists %v, want %v", rows, names)
	}
	if err := c.Do(bg, http.MethodPut, "/v1/nodes/"+uuids[1]+"/states/provision", map[string]any{"target": "manage"}, nil); err != nil {
		t.Fatal(err)
	}
	sel := `#nodes tr[data-uuid="` + uuids[1] + `"] td[data-field=provision_state]`
	if _, err := chromedp.Run(step, chromedp.Poll[bool](`document.querySelector('`+sel+`').textContent === "manageable"`,
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("the fleet page did not show web-2 manageable: %v", err)
	}
	counts, err := chromedp.Run(step, chromedp.Text(chromedp.CSS("#counts")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(counts, "manageable 1") || !strings.Contains(counts, "enroll 1") || !strings.Contains(counts, "available 1") {
		t.Errorf("the live counts are %q, want available 1, enroll 1, manageable 1", counts)
	}
	screenshot(t, step, dir, "fleet")

	// The node page: deploy, confirmed in the dialog.
	if err := chromedp.Do(step, chromedp.Navigate(srv.URL()+"/ui/nodes/web-1"), chromedp.WaitVisible(chromedp.CSS("#live.on"))); err != nil {
		t.Fatalf("node page: %v", err)
	}
	html, err := chromedp.Run(step, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, "not-shown") {
		t.Error("the node page shows the IPMI password")
	}
	screenshot(t, step, dir, "node")
	start := time.Now()
	if err := chromedp.Do(step,
		chromedp.Click(chromedp.CSS(`button[data-action="deploy"]`)),
		chromedp.WaitVisible(chromedp.CSS("#confirm")),
		chromedp.SendKeys(chromedp.CSS(`input[name="image_source"]`), "http://127.0.0.1:9/images/debian.raw"),
		chromedp.SendKeys(chromedp.CSS(`input[name="image_checksum"]`), "sha256:"+strings.Repeat("ab", 32)),
	); err != nil {
		t.Fatalf("open the deploy dialog: %v", err)
	}
	screenshot(t, step, dir, "node-confirm-deploy")
	if _, err := chromedp.RunResponse(step, chromedp.Click(chromedp.CSS("#confirm-yes"))); err != nil {
		t.Fatalf("confirm the deploy: %v", err)
	}
	seen, err := chromedp.Run(step, chromedp.Poll[[]seenState](
		`(() => { const s = JSON.parse(sessionStorage.getItem("seen") || "[]"); return s.length && s[s.length-1].state === "active" ? s : null })()`,
		chromedp.WithPollingTimeout(90*time.Second)))
	if err != nil {
		t.Fatalf("the node page did not reach active: %v", err)
	}
	t.Logf("deploy from the page reached active in %v; the page showed %+v", time.Since(start).Round(time.Millisecond), seen)
	var states []string
	for _, s := range seen {
		states = append(states, s.State)
	}
	if want := []string{"available", "deploying", "active"}; !slices.Equal(states, want) {
		t.Errorf("the page showed %v, want %v", states, want)
	}
	if last := seen[len(seen)-1]; last.How != "live" {
		t.Errorf("active came with a page load, not from the stream: %+v", seen)
	}
	if _, err := chromedp.Run(step, chromedp.Poll[bool](`[...document.querySelectorAll("#live-log li")].some(li => li.dataset.state === "active")`,
		chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Errorf("the live log does not show active: %v", err)
	}
	if done, err := chromedp.Run(step, chromedp.Text(chromedp.ID("action-done"))); err != nil || !strings.Contains(done, "deploy requested") {
		t.Errorf("the page does not confirm the request: %q %v", done, err)
	}
	// The agent's progress, as a heartbeat records it, shows live with its bar.
	if _, err := srv.Store().UpdateNode(bg, uuids[0], func(n *ironwork.Node) error {
		n.DriverInternalInfo["ironwork_agent_progress"] = map[string]any{"command": "standby.prepare_image",
			"bytes_done": float64(1 << 20), "bytes_total": float64(4 << 20), "bytes_per_second": float64(1 << 20)}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(step, chromedp.Poll[bool](
		`document.querySelector(".summary [data-field=progress]").textContent === "1.0 MiB written of 4.0 MiB" && document.getElementById("progress-bar").value === 25`,
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Errorf("the node page does not show the agent's progress: %v", err)
	}
	screenshot(t, step, dir, "node-active")
	var n map[string]any
	if err := c.Do(bg, http.MethodGet, "/v1/nodes/"+uuids[0], nil, &n); err != nil {
		t.Fatal(err)
	}
	if n["provision_state"] != "active" || n["instance_info"].(map[string]any)["image_source"] != "http://127.0.0.1:9/images/debian.raw" {
		t.Errorf("the node is %v with instance_info %v", n["provision_state"], n["instance_info"])
	}
}

// TestBrowserSerialConsole enables a fake-hardware node's console from its page (button,
// confirmation), connects the page's terminal to the websocket, reads the fake console's
// banner, types into the terminal and reads the echo; a node without a console says so.
func TestBrowserSerialConsole(t *testing.T) {
	ctx := newChromium(t)
	dir := artifacts(t)
	srv := start(t)
	c := &api.Client{BaseURL: srv.URL()}
	bg := context.Background()
	uuid := enrol(t, c, "tty-1", map[string]any{"console_interface": "fake"})
	enrol(t, c, "mute-1", map[string]any{"console_interface": "no-console"})
	step, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	if err := chromedp.Do(step, chromedp.Navigate(srv.URL()+"/ui/nodes/mute-1"), chromedp.WaitVisible(chromedp.CSS("#live.on"))); err != nil {
		t.Fatalf("node page: %v", err)
	}
	none, err := chromedp.Run(step, chromedp.Text(chromedp.ID("console-none")))
	if err != nil || !strings.Contains(none, "no serial console") || !strings.Contains(none, "no-console") {
		t.Errorf("a node without a console shows %q (%v)", none, err)
	}
	if n, err := chromedp.Run(step, chromedp.Evaluate[int](`document.querySelectorAll("#console-term, #console-connect").length`)); err != nil || n != 0 {
		t.Errorf("a node without a console has %d terminal elements (%v)", n, err)
	}

	if err := chromedp.Do(step, chromedp.Navigate(srv.URL()+"/ui/nodes/tty-1"), chromedp.WaitVisible(chromedp.CSS("#live.on"))); err != nil {
		t.Fatalf("node page: %v", err)
	}
	if dis, err := chromedp.Run(step, chromedp.Evaluate[bool](`document.getElementById("console-connect").disabled`)); err != nil || !dis {
		t.Errorf("Connect is enabled while the console is disabled (%v)", err)
	}
	if err := chromedp.Do(step,
		chromedp.Click(chromedp.CSS(`button[data-action="console-on"]`)),
		chromedp.WaitVisible(chromedp.CSS("#confirm")),
	); err != nil {
		t.Fatalf("open the console dialog: %v", err)
	}
	start := time.Now()
	if _, err := chromedp.RunResponse(step, chromedp.Click(chromedp.CSS("#confirm-yes"))); err != nil {
		t.Fatalf("confirm: %v", err)
	}
	if err := chromedp.Do(step, chromedp.WaitVisible(chromedp.CSS("#live.on"))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(step, chromedp.Poll[bool](`document.getElementById("console-enabled").textContent === "true" && !document.getElementById("console-connect").disabled`,
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("the page does not show the console enabled: %v", err)
	}
	t.Logf("console enabled from the page in %v", time.Since(start).Round(time.Millisecond))
	banner := "fake serial console of node " + uuid
	if err := chromedp.Do(step, chromedp.Click(chromedp.ID("console-connect"))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(step, chromedp.Poll[bool](`document.getElementById("console-status").textContent.startsWith("connected")`,
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("the terminal did not connect: %v", err)
	}
	// The serial line was attached (and printed its banner) when the console was enabled; an
	// empty line makes the fake console print it again, as a getty its prompt.
	if err := chromedp.Do(step, chromedp.SendKeys(chromedp.ID("console-term"), "\r")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(step, chromedp.Poll[bool](`document.getElementById("console-term").textContent.includes(`+jsString(banner)+`)`,
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		text, _ := chromedp.Run(step, chromedp.Text(chromedp.ID("console-status")))
		t.Fatalf("the terminal does not show the banner (status %q): %v", text, err)
	}
	typed := "hello from chromium"
	if err := chromedp.Do(step, chromedp.Click(chromedp.ID("console-term")), chromedp.SendKeys(chromedp.ID("console-term"), typed)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(step, chromedp.Poll[bool](`document.getElementById("console-term").textContent.includes(`+jsString(banner+"\n"+typed)+`)`,
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		text, _ := chromedp.Run(step, chromedp.Text(chromedp.ID("console-term")))
		t.Fatalf("the terminal does not show the echo of what was typed: %q: %v", text, err)
	}
	// Backspace goes down the line as DEL; the fake console echoes it and the terminal erases.
	if err := chromedp.Do(step, chromedp.SendKeys(chromedp.ID("console-term"), "\b\b\b")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(step, chromedp.Poll[bool](`document.getElementById("console-term").textContent.endsWith(`+jsString(typed[:len(typed)-3])+`)`,
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		text, _ := chromedp.Run(step, chromedp.Text(chromedp.ID("console-term")))
		t.Errorf("backspaces were not applied: %q: %v", text, err)
	}
	screenshot(t, step, dir, "node-console")
	if err := chromedp.Do(step, chromedp.Click(chromedp.ID("console-disconnect"))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(step, chromedp.Poll[bool](`document.getElementById("console-status").textContent.startsWith("disconnected") && !document.getElementById("console-connect").disabled`,
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Errorf("the page does not show the disconnection: %v", err)
	}
	// The console is free again: a client of the API can connect.
	var st map[string]any
	if err := c.Do(bg, http.MethodGet, "/v1/nodes/"+uuid+"/states/console", nil, &st); err != nil || st["console_enabled"] != true {
		t.Errorf("GET states/console: %v %v", st, err)
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
