package httpboot_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ironwork/ironwork/internal/httpboot"
)

type scripts map[string]string

func (s scripts) Script(_ context.Context, mac string) (string, error) {
	if v, ok := s[mac]; ok {
		return v, nil
	}
	if mac == "52:54:00:00:00:ee" {
		return "", errors.New("database is down")
	}
	return "#!ipxe\nexit 1\n", nil
}

func (s scripts) ChainScript() string { return "#!ipxe\nchain /boot/${netX/mac}.ipxe\n" }

func (s scripts) GrubConfig(_ context.Context, mac string) (string, error) {
	if mac == "52:54:00:00:00:ee" {
		return "", errors.New("database is down")
	}
	return "echo grub for " + mac + "\nexit\n", nil
}

func setup(t *testing.T) (*httptest.Server, []byte) {
	t.Helper()
	root := t.TempDir()
	outside := t.TempDir()
	data := make([]byte, 1<<20+123)
	rand.Read(data)
	if err := os.MkdirAll(filepath.Join(root, "nodes", "n1"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"nodes/n1/kernel": data, "snponly.efi": []byte("EFI")} {
		if err := os.WriteFile(filepath.Join(root, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("SECRET"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	srv, err := httpboot.New(root, scripts{"52:54:00:00:00:01": "#!ipxe\necho node one\n"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts, data
}

func curl(t *testing.T, args ...string) (status string, body []byte) {
	t.Helper()
	bin, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed")
	}
	out, err := exec.Command(bin, append([]string{"-s", "-w", "\n%{http_code}"}, args...)...).Output()
	if err != nil {
		t.Fatalf("curl %v: %v", args, err)
	}
	i := bytes.LastIndexByte(out, '\n')
	return string(out[i+1:]), out[:i]
}

// TestFilesWithCurl fetches boot files with curl, whole and by ranges, as firmware and iPXE do.
func TestFilesWithCurl(t *testing.T) {
	ts, data := setup(t)
	code, body := curl(t, ts.URL+"/nodes/n1/kernel")
	if code != "200" || !bytes.Equal(body, data) {
		t.Fatalf("whole file: %s, %d bytes", code, len(body))
	}
	code, body = curl(t, "-r", "1000-1999", ts.URL+"/nodes/n1/kernel")
	if code != "206" || !bytes.Equal(body, data[1000:2000]) {
		t.Fatalf("range: %s, %d bytes", code, len(body))
	}
	code, body = curl(t, "-r", "-100", ts.URL+"/nodes/n1/kernel")
	if code != "206" || !bytes.Equal(body, data[len(data)-100:]) {
		t.Fatalf("suffix range: %s, %d bytes", code, len(body))
	}
	code, _ = curl(t, "-r", "5000000-6000000", ts.URL+"/nodes/n1/kernel")
	if code != "416" {
		t.Fatalf("range past the end: %s", code)
	}
	code, body = curl(t, "-I", ts.URL+"/nodes/n1/kernel")
	if code != "200" || !strings.Contains(strings.ToLower(string(body)), "content-length: 1048699") {
		t.Fatalf("HEAD: %s %s", code, body)
	}
}

func TestRefusesEscapesDirectoriesAndWrites(t *testing.T) {
	ts, _ := setup(t)
	for _, p := range []string{"/escape", "/../../etc/passwd", "/nodes/../../secret", "/nodes/", "/nodes", "/", "/%2e%2e/etc/passwd"} {
		code, body := curl(t, "--path-as-is", ts.URL+p)
		if code != "404" || bytes.Contains(body, []byte("SECRET")) || bytes.Contains(body, []byte("root:")) {
			t.Errorf("GET %s: %s %q", p, code, body)
		}
	}
	code, _ := curl(t, "-X", "POST", "-d", "x", ts.URL+"/snponly.efi")
	if code != "405" {
		t.Errorf("POST: %s", code)
	}
}

func TestScripts(t *testing.T) {
	ts, _ := setup(t)
	for path, want := range map[string]string{
		"/boot/52:54:00:00:00:01.ipxe": "echo node one",
		"/boot/52-54-00-00-00-01.ipxe": "echo node one",
		"/boot/52:54:00:00:00:02.ipxe": "exit 1",
		"/boot.ipxe":                   "chain /boot/${netX/mac}.ipxe",
		"/boot/52:54:00:00:00:01.grub": "echo grub for 52:54:00:00:00:01",
		"/boot/52-54-00-00-00-02.grub": "echo grub for 52:54:00:00:00:02",
	} {
		code, body := curl(t, ts.URL+path)
		if code != "200" || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %s %q", path, code, body)
		}
	}
	for _, p := range []string{"/boot/not-a-mac.ipxe", "/boot/not-a-mac.grub", "/boot/unknown.grub"} {
		if code, _ := curl(t, ts.URL+p); code != "400" {
			t.Errorf("bad MAC %s: %s", p, code)
		}
	}
	if code, _ := curl(t, ts.URL+"/boot/52:54:00:00:00:ee.grub"); code != "500" {
		t.Errorf("GRUB configuration that cannot be rendered: %s", code)
	}
	resp, err := http.Get(ts.URL + "/boot/52:54:00:00:00:ee.ipxe")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Errorf("script that cannot be rendered: %d", resp.StatusCode)
	}
}

// TestOnRequestSeesEveryStatus counts the answers of real requests by status, as the server
// reports them to its hook.
func TestOnRequestSeesEveryStatus(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "snponly.efi"), []byte("EFI"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv, err := httpboot.New(root, scripts{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	var mu sync.Mutex
	seen := map[int]int{}
	srv.OnRequest = func(status int) { mu.Lock(); seen[status]++; mu.Unlock() }
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	for _, path := range []string{"/snponly.efi", "/snponly.efi", "/missing", "/boot.ipxe"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Post(ts.URL+"/snponly.efi", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if seen[200] != 3 || seen[404] != 1 || seen[405] != 1 || len(seen) != 3 {
		t.Errorf("statuses seen: %v, want 3 x 200, 1 x 404, 1 x 405", seen)
	}
}
