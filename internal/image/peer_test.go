package image

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/internal/lockedbuf"
)

// pythonHTTPServer runs Debian's python3 -m http.server on loopback over
// dir and returns its base URL and a function counting logged requests.
// Its server gives Last-Modified but no ETag, and answers If-Modified-Since
// with 304, so it exercises the Last-Modified path of revalidation.
func pythonHTTPServer(t *testing.T, dir string) (string, func(method, path string) int) {
	t.Helper()
	py, err := exec.LookPath("/usr/bin/python3")
	if err != nil {
		t.Skip("needs /usr/bin/python3 (Debian package python3)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, py, "-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory", dir, "0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedbuf.Buffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })

	port := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`port (\d+)`)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				port <- m[1]
				break
			}
		}
		for sc.Scan() {
		}
	}()
	var base string
	select {
	case p := <-port:
		base = "http://127.0.0.1:" + p
	case <-time.After(10 * time.Second):
		t.Fatal("python3 http.server did not report its port")
	}
	count := func(method, path string) int {
		return strings.Count(logs.String(), fmt.Sprintf(`"%s %s HTTP/1.1"`, method, path))
	}
	return base, count
}

func TestFetchFromPythonHTTPServer(t *testing.T) {
	dir := t.TempDir()
	img := randomBytes(2<<20, 50)
	if err := os.WriteFile(filepath.Join(dir, "ipa.initramfs"), img, 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(sha256Hex(img)+"  ipa.initramfs\n"), 0o644)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(dir, "ipa.initramfs"), old, old)
	base, count := pythonHTTPServer(t, dir)

	clock := newFakeClock()
	c, _ := newTestCache(t, Config{Now: clock.Now})
	src := Source{URL: base + "/ipa.initramfs", Checksum: base + "/SHA256SUMS"}
	ctx := context.Background()
	p, err := c.Fetch(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	assertMaster(t, p, img)

	clock.Advance(DefaultRevalidateAfter + time.Second)
	if _, err := c.Fetch(ctx, src); err != nil {
		t.Fatal(err)
	}
	// The server writes its log line after the response; give it a moment.
	deadline := time.Now().Add(5 * time.Second)
	for count("HEAD", "/ipa.initramfs") < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g, h := count("GET", "/ipa.initramfs"), count("HEAD", "/ipa.initramfs"); g != 1 || h != 1 {
		t.Errorf("python http.server saw %d GETs and %d HEADs, want 1 and 1 (304 on HEAD)", g, h)
	}

	_, err = c.Fetch(ctx, Source{URL: base + "/nope.img", Checksum: hex64})
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("Fetch of a missing file: %v, want a 404 error", err)
	}
}
