package server

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/shacrypt"
)

func TestFinalizeRescue(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	// An earlier rescue user and another account: the first is replaced, the second kept.
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("daemon:x:1:1::/:/bin/false\nrescue:x:0:0:old:/root:/bin/sh\n"), 0o644)
	var rescued atomic.Int32
	ta := machineAgent(t, &Machine{RescueRoot: root, Rescued: func() { rescued.Add(1) }})
	hash, err := shacrypt.Generate("s3cret with spaces")
	if err != nil {
		t.Fatal(err)
	}
	r := ta.run(t, "rescue.finalize_rescue", map[string]any{"rescue_password": hash, "hashed": true})
	if r.CommandStatus != api.CommandSucceeded || rescued.Load() != 1 {
		t.Fatalf("finalize_rescue: %+v, Rescued called %d times", r, rescued.Load())
	}
	if r.CommandParams["rescue_password"] != "******" {
		t.Errorf("the command's recorded params show the hash: %v", r.CommandParams)
	}
	passwd := string(mustRead(t, filepath.Join(root, "etc/passwd")))
	if passwd != "daemon:x:1:1::/:/bin/false\nroot:x:0:0:root:/root:/bin/sh\nrescue:x:0:0:rescue:/root:/bin/sh\n" {
		t.Errorf("etc/passwd:\n%s", passwd)
	}
	shadow := string(mustRead(t, filepath.Join(root, "etc/shadow")))
	if !strings.Contains(shadow, "\nrescue:"+hash+":") {
		t.Errorf("etc/shadow has no rescue entry with the hash:\n%s", shadow)
	}
	if fi, _ := os.Stat(filepath.Join(root, "etc/shadow")); fi.Mode().Perm() != 0o600 {
		t.Errorf("etc/shadow mode %v", fi.Mode())
	}
	// The list of commands does not show the hash either.
	code, b := ta.get(t, "/v1/commands/")
	if code != http.StatusOK || strings.Contains(string(b), hash) {
		t.Errorf("GET /v1/commands: %d, shows the hash: %v", code, strings.Contains(string(b), hash))
	}

	// hashed false: the agent hashes the password itself (IPA's old form).
	r = ta.run(t, "rescue.finalize_rescue", map[string]any{"rescue_password": "plain pw"})
	shadow = string(mustRead(t, filepath.Join(root, "etc/shadow")))
	var got string
	for _, l := range strings.Split(shadow, "\n") {
		if f := strings.Split(l, ":"); f[0] == "rescue" {
			got = f[1]
		}
	}
	if r.CommandStatus != api.CommandSucceeded || !shacrypt.Verify(got, "plain pw") || strings.Count(shadow, "\nrescue:") != 1 {
		t.Errorf("hashed false: %+v; shadow:\n%s", r, shadow)
	}
}

func TestFinalizeRescueRefuses(t *testing.T) {
	root := t.TempDir()
	ta := machineAgent(t, &Machine{RescueRoot: root})
	for name, params := range map[string]map[string]any{
		"no password":         {"hashed": true},
		"blank":               {"rescue_password": "  ", "hashed": true},
		"not a hash":          {"rescue_password": "plain", "hashed": true},
		"a second shadow row": {"rescue_password": "$6$x$y\nroot::0:0:::::", "hashed": true},
		"a field separator":   {"rescue_password": "$6$x$y:0", "hashed": true},
		"hashed not a bool":   {"rescue_password": "pw", "hashed": "yes"},
		"too long to hash":    {"rescue_password": strings.Repeat("p", shacrypt.MaxPassword+1)},
	} {
		body, _ := json.Marshal(api.AgentCommand{Name: "rescue.finalize_rescue", Params: params})
		code, b := ta.post(t, testToken, "true", string(body))
		if code != http.StatusBadRequest {
			t.Errorf("%s: status %d: %s", name, code, b)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "etc/shadow")); err == nil {
		t.Error("a refused finalize_rescue wrote etc/shadow")
	}
	// An agent outside a ramdisk (no rescue root) writes nothing.
	ta = machineAgent(t, &Machine{})
	r := ta.run(t, "rescue.finalize_rescue", map[string]any{"rescue_password": "pw"})
	if r.CommandStatus != api.CommandFailed {
		t.Errorf("no rescue root: %+v", r)
	}
}

// FuzzRescueHash: whatever finalize_rescue is sent, an accepted hash is one /etc/shadow field
// (no ':', no line break), and writing it leaves exactly one rescue line in each file.
func FuzzRescueHash(f *testing.F) {
	f.Add("$6$salt$hash", true)
	f.Add("plain password", false)
	f.Add("$6$x$y\nroot::0:0:::::", true)
	f.Add("$6$a:b", true)
	f.Add(" ", false)
	root := f.TempDir()
	f.Fuzz(func(t *testing.T, pw string, hashed bool) {
		h, err := rescueHash(map[string]any{"rescue_password": pw, "hashed": hashed})
		if err != nil {
			return
		}
		if strings.ContainsAny(h, ":\n\r\x00") || h == "" {
			t.Fatalf("accepted %q (hashed %v) as %q", pw, hashed, h)
		}
		if !hashed && !shacrypt.Verify(h, pw) {
			t.Fatalf("the hash of %q does not verify", pw)
		}
		if err := WriteRescueUser(root, h); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"passwd", "shadow"} {
			b := mustRead(t, filepath.Join(root, "etc", name))
			if n := strings.Count("\n"+string(b), "\nrescue:"); n != 1 {
				t.Fatalf("etc/%s has %d rescue lines:\n%s", name, n, b)
			}
		}
	})
}
