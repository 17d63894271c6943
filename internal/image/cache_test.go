package image

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ironwork/ironwork/internal/lockedbuf"
)

// imageServer is a real HTTP server on loopback serving in-memory files
// through http.ServeContent (Content-Length, Last-Modified, ETag, HEAD and
// conditional requests), counting requests per method and path.
type imageServer struct {
	*httptest.Server
	mu    sync.Mutex
	files map[string][]byte
	mods  map[string]time.Time
	hits  map[string]int // "GET /path" -> count
	delay time.Duration
}

func newImageServer(t *testing.T) *imageServer {
	t.Helper()
	s := &imageServer{files: map[string][]byte{}, mods: map[string]time.Time{}, hits: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *imageServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.hits[r.Method+" "+r.URL.Path]++
	b, ok := s.files[r.URL.Path]
	mod := s.mods[r.URL.Path]
	delay := s.delay
	s.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	switch {
	case r.URL.Path == "/boom":
		http.Error(w, "broken", http.StatusInternalServerError)
		return
	case !ok:
		http.NotFound(w, r)
		return
	}
	sum := sha256.Sum256(b)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:8])+`"`)
	http.ServeContent(w, r, r.URL.Path, mod, bytes.NewReader(b))
}

func (s *imageServer) put(path string, b []byte, mod time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[path] = b
	s.mods[path] = mod.UTC().Truncate(time.Second)
	return s.URL + path
}

func (s *imageServer) count(methodPath string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[methodPath]
}

// fakeClock starts a year ahead so kernel relatime updates (to the real
// time) never look like a more recent use than the fake one.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Now().Add(365 * 24 * time.Hour).Truncate(time.Second)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestCache(t *testing.T, cfg Config) (*Cache, *lockedbuf.Buffer) {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(t.TempDir(), "cache")
	}
	logs := &lockedbuf.Buffer{}
	c, err := New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return c, logs
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sha256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
func sha512Hex(b []byte) string { s := sha512.Sum512(b); return hex.EncodeToString(s[:]) }
func md5Hex(b []byte) string    { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

// cacheFiles lists every name in the cache directory.
func cacheFiles(t *testing.T, c *Cache) []string {
	t.Helper()
	entries, err := os.ReadDir(c.Dir())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func assertMaster(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("master %s: %d bytes, want %d bytes of the image", path, len(got), len(want))
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o644 {
		t.Errorf("master mode %v, want 0644", perm)
	}
}

func TestFetchVerified(t *testing.T) {
	srv := newImageServer(t)
	img := randomBytes(300<<10, 1)
	mod := time.Now().Add(-time.Hour)
	imgURL := srv.put("/images/disk.qcow2", img, mod)
	other := randomBytes(100, 2)
	srv.put("/images/SHA256SUMS", []byte(fmt.Sprintf("%s  other.img\n%s  disk.qcow2\n", sha256Hex(other), sha256Hex(img))), mod)
	srv.put("/images/CHECKSUM", []byte(fmt.Sprintf("# CentOS style\nSHA512 (other.img) = %s\nSHA512 (disk.qcow2) = %s\n", sha512Hex(other), sha512Hex(img))), mod)
	local := filepath.Join(t.TempDir(), "kernel")
	if err := os.WriteFile(local, img, 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		src  Source
		path string // GET counted for the image itself; "" for file sources
	}{
		{"sha256", Source{URL: imgURL, Checksum: "sha256:" + sha256Hex(img)}, "/images/disk.qcow2"},
		{"sha512", Source{URL: imgURL, Checksum: "sha512:" + sha512Hex(img)}, "/images/disk.qcow2"},
		{"md5", Source{URL: imgURL, Checksum: "md5:" + md5Hex(img)}, "/images/disk.qcow2"},
		{"bare sha256", Source{URL: imgURL, Checksum: strings.ToUpper(sha256Hex(img))}, "/images/disk.qcow2"},
		{"bare md5", Source{URL: imgURL, Checksum: md5Hex(img)}, "/images/disk.qcow2"},
		{"checksum file", Source{URL: imgURL, Checksum: srv.URL + "/images/SHA256SUMS"}, "/images/disk.qcow2"},
		{"bsd checksum file", Source{URL: imgURL, Checksum: srv.URL + "/images/CHECKSUM"}, "/images/disk.qcow2"},
		{"file url", Source{URL: "file://" + local, Checksum: "sha256:" + sha256Hex(img)}, ""},
		{"plain path", Source{URL: local, Checksum: sha512Hex(img)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newTestCache(t, Config{})
			before := srv.count("GET " + tt.path)
			p, err := c.Fetch(context.Background(), tt.src)
			if err != nil {
				t.Fatal(err)
			}
			assertMaster(t, p, img)
			if filepath.Dir(p) != c.Dir() {
				t.Errorf("master %s is not in %s", p, c.Dir())
			}
			p2, err := c.Fetch(context.Background(), tt.src)
			if err != nil {
				t.Fatal(err)
			}
			if p2 != p {
				t.Errorf("second Fetch gave %s, want %s", p2, p)
			}
			if tt.path != "" {
				if n := srv.count("GET "+tt.path) - before; n != 1 {
					t.Errorf("server saw %d GETs for two Fetches, want 1", n)
				}
			}
			if size, err := c.Size(); err != nil || size != int64(len(img)) {
				t.Errorf("Size() = %d, %v; want %d", size, err, len(img))
			}
		})
	}
}

func TestFetchChangedChecksumGivesNewMaster(t *testing.T) {
	srv := newImageServer(t)
	img := randomBytes(1000, 3)
	u := srv.put("/k", img, time.Now())
	c, _ := newTestCache(t, Config{})
	p1, err := c.Fetch(context.Background(), Source{URL: u, Checksum: "sha256:" + sha256Hex(img)})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := c.Fetch(context.Background(), Source{URL: u, Checksum: "md5:" + md5Hex(img)})
	if err != nil {
		t.Fatal(err)
	}
	if p1 == p2 {
		t.Fatalf("both checksums map to master %s", p1)
	}
	if n := srv.count("GET /k"); n != 2 {
		t.Errorf("server saw %d GETs, want 2", n)
	}
}

func TestFetchConcurrentDownloadsOnce(t *testing.T) {
	srv := newImageServer(t)
	srv.delay = 200 * time.Millisecond
	img := randomBytes(2<<20, 4)
	src := Source{URL: srv.put("/ramdisk", img, time.Now()), Checksum: sha256Hex(img)}
	c, _ := newTestCache(t, Config{})

	const n = 20
	paths := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { paths[i], errs[i] = c.Fetch(context.Background(), src) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Fetch %d: %v", i, errs[i])
		}
		if paths[i] != paths[0] {
			t.Fatalf("Fetch %d gave %s, Fetch 0 gave %s", i, paths[i], paths[0])
		}
	}
	assertMaster(t, paths[0], img)
	if got := srv.count("GET /ramdisk"); got != 1 {
		t.Errorf("server saw %d GETs for %d concurrent Fetches, want 1", got, n)
	}
}

// waiters reports how many Fetches wait on the flight for src.
func waiters(c *Cache, src Source) int {
	s, _ := c.resolve(src)
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.flights[s.key]; f != nil {
		return f.waiters
	}
	return 0
}

func TestFetchWaiterCancelDoesNotCancelOthers(t *testing.T) {
	img := randomBytes(1<<20, 5)
	release := make(chan struct{})
	var gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		w.Header().Set("Content-Length", fmt.Sprint(len(img)))
		w.Write(img[:1000])
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.Write(img[1000:])
	}))
	t.Cleanup(srv.Close)
	defer close(release)
	src := Source{URL: srv.URL + "/img", Checksum: sha256Hex(img)}
	c, _ := newTestCache(t, Config{})

	ctxA, cancelA := context.WithCancel(context.Background())
	errA := make(chan error, 1)
	go func() { _, err := c.Fetch(ctxA, src); errA <- err }()
	type result struct {
		path string
		err  error
	}
	resB := make(chan result, 1)
	go func() { p, err := c.Fetch(context.Background(), src); resB <- result{p, err} }()

	deadline := time.Now().Add(10 * time.Second)
	for waiters(c, src) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("waiters = %d, want 2", waiters(c, src))
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancelA()
	if err := <-errA; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Fetch: %v, want context.Canceled", err)
	}
	release <- struct{}{}
	r := <-resB
	if r.err != nil {
		t.Fatalf("remaining Fetch: %v", r.err)
	}
	assertMaster(t, r.path, img)
	if n := gets.Load(); n != 1 {
		t.Errorf("server saw %d GETs, want 1", n)
	}
}

func TestFetchChecksumMismatch(t *testing.T) {
	srv := newImageServer(t)
	img := randomBytes(5000, 6)
	u := srv.put("/img", img, time.Now())
	wrong := sha256Hex([]byte("something else"))
	c, _ := newTestCache(t, Config{})
	_, err := c.Fetch(context.Background(), Source{URL: u, Checksum: "sha256:" + wrong})
	var mm *ChecksumMismatchError
	if !errors.As(err, &mm) {
		t.Fatalf("Fetch error %v, want *ChecksumMismatchError", err)
	}
	for _, want := range []string{wrong, sha256Hex(img), "sha256", "/img"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if files := cacheFiles(t, c); len(files) != 0 {
		t.Errorf("cache holds %v after a mismatch, want nothing", files)
	}
}

func TestFetchHTTPStatus(t *testing.T) {
	srv := newImageServer(t)
	c, _ := newTestCache(t, Config{})
	for _, tt := range []struct {
		path string
		code int
	}{{"/missing", 404}, {"/boom", 500}} {
		_, err := c.Fetch(context.Background(), Source{URL: srv.URL + tt.path, Checksum: hex64})
		var se *HTTPStatusError
		if !errors.As(err, &se) || se.StatusCode != tt.code {
			t.Fatalf("Fetch %s: %v, want HTTPStatusError %d", tt.path, err, tt.code)
		}
		if !strings.Contains(err.Error(), fmt.Sprint(tt.code)) || !strings.Contains(err.Error(), srv.URL+tt.path) {
			t.Errorf("error %q lacks the status or the URL", err)
		}
	}
	if files := cacheFiles(t, c); len(files) != 0 {
		t.Errorf("cache holds %v, want nothing", files)
	}
}

func TestFetchRedactsCredentials(t *testing.T) {
	srv := newImageServer(t)
	c, logs := newTestCache(t, Config{})
	u := strings.Replace(srv.URL, "http://", "http://admin:s3cret@", 1) + "/missing?temp_url_sig=t0ken"
	_, err := c.Fetch(context.Background(), Source{URL: u, Checksum: "sha256:" + hex64})
	if err == nil {
		t.Fatal("Fetch of a missing image succeeded")
	}
	img := randomBytes(100, 7)
	good := strings.Replace(srv.put("/ok", img, time.Now()), "http://", "http://admin:s3cret@", 1) + "?temp_url_sig=t0ken"
	if _, err := c.Fetch(context.Background(), Source{URL: good, Checksum: sha256Hex(img)}); err != nil {
		t.Fatal(err)
	}
	meta, _ := os.ReadFile(filepath.Join(c.Dir(), mustKey(t, c, Source{URL: good, Checksum: sha256Hex(img)})+metaSuffix))
	for _, text := range []string{err.Error(), logs.String(), string(meta)} {
		for _, secret := range []string{"s3cret", "admin", "t0ken"} {
			if strings.Contains(text, secret) {
				t.Errorf("%q leaks %q", text, secret)
			}
		}
	}
	if !strings.Contains(logs.String(), "image downloaded") {
		t.Errorf("no download log line in %q", logs.String())
	}
}

func mustKey(t *testing.T, c *Cache, src Source) string {
	t.Helper()
	s, err := c.resolve(src)
	if err != nil {
		t.Fatal(err)
	}
	return s.key
}

// TestFetchShortBody: the server promises more bytes than it sends and
// closes the connection.
func TestFetchShortBody(t *testing.T) {
	img := randomBytes(64<<10, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(img))
		buf.Write(img[:len(img)/2])
		buf.Flush()
	}))
	t.Cleanup(srv.Close)
	c, _ := newTestCache(t, Config{})
	_, err := c.Fetch(context.Background(), Source{URL: srv.URL + "/img", Checksum: sha256Hex(img)})
	if err == nil {
		t.Fatal("Fetch of a truncated body succeeded")
	}
	if !strings.Contains(err.Error(), "unexpected EOF") {
		t.Errorf("error %q, want an unexpected EOF", err)
	}
	if files := cacheFiles(t, c); len(files) != 0 {
		t.Errorf("cache holds %v, want nothing", files)
	}
}

func TestFetchCancelSlowDownload(t *testing.T) {
	chunk := randomBytes(32<<10, 9)
	aborted := make(chan bool, 1) // whether the server saw the client go away
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(1000*len(chunk)))
		for range 1000 {
			if _, err := w.Write(chunk); err != nil {
				aborted <- true
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				aborted <- true
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
		aborted <- false
	}))
	t.Cleanup(srv.Close)
	var progress atomic.Int64
	c, _ := newTestCache(t, Config{OnProgress: func(_ string, done, total int64) {
		if total != int64(1000*len(chunk)) {
			t.Errorf("progress total %d", total)
		}
		progress.Store(done)
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	_, err := c.Fetch(ctx, Source{URL: srv.URL + "/slow", Checksum: sha256Hex(chunk)})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Fetch: %v, want DeadlineExceeded", err)
	}
	if files := cacheFiles(t, c); len(files) != 0 {
		t.Errorf("cache holds %v after cancel, want nothing", files)
	}
	if p := progress.Load(); p <= 0 {
		t.Errorf("no progress reported during 1.5 s of download")
	}
	select {
	case a := <-aborted:
		if !a {
			t.Error("the server sent the whole body: the download was not aborted")
		}
	case <-time.After(10 * time.Second):
		t.Error("the server still sends 10 s after Fetch returned: the download was not aborted")
	}
}

func TestFetchStalled(t *testing.T) {
	for _, tt := range []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000000")
			w.Write([]byte("x"))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}},
		{"headers", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			t.Cleanup(srv.Close)
			c, _ := newTestCache(t, Config{StallTimeout: 300 * time.Millisecond})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := c.Fetch(ctx, Source{URL: srv.URL + "/stuck", Checksum: hex64})
			if !errors.Is(err, ErrStalled) {
				t.Fatalf("Fetch: %v, want ErrStalled", err)
			}
			if files := cacheFiles(t, c); len(files) != 0 {
				t.Errorf("cache holds %v, want nothing", files)
			}
		})
	}
}

func TestFetchProgressCompletes(t *testing.T) {
	srv := newImageServer(t)
	img := randomBytes(3<<20, 10)
	u := srv.put("/p", img, time.Now())
	var last [2]int64
	var calls atomic.Int32
	c, _ := newTestCache(t, Config{OnProgress: func(url string, done, total int64) {
		if url != u {
			t.Errorf("progress url %q, want %q", url, u)
		}
		calls.Add(1)
		last = [2]int64{done, total}
	}})
	if _, err := c.Fetch(context.Background(), Source{URL: u, Checksum: sha256Hex(img)}); err != nil {
		t.Fatal(err)
	}
	if calls.Load() == 0 || last != [2]int64{int64(len(img)), int64(len(img))} {
		t.Errorf("last progress %v after %d calls, want done = total = %d", last, calls.Load(), len(img))
	}
}

func TestFetchNoChecksum(t *testing.T) {
	srv := newImageServer(t)
	img := randomBytes(100, 11)
	u := srv.put("/x", img, time.Now())
	c, _ := newTestCache(t, Config{})
	if _, err := c.Fetch(context.Background(), Source{URL: u}); !errors.Is(err, ErrNoChecksum) {
		t.Fatalf("Fetch without checksum: %v, want ErrNoChecksum", err)
	}
	if n := srv.count("GET /x"); n != 0 {
		t.Errorf("server saw %d GETs for a refused Fetch", n)
	}
	cu, logs := newTestCache(t, Config{AllowUnverified: true})
	p, err := cu.Fetch(context.Background(), Source{URL: u})
	if err != nil {
		t.Fatal(err)
	}
	assertMaster(t, p, img)
	if !strings.Contains(logs.String(), "without verification") {
		t.Errorf("no warning about an unverified image in %q", logs.String())
	}
}

func TestFetchBadSources(t *testing.T) {
	c, _ := newTestCache(t, Config{})
	for _, u := range []string{"ftp://h/x", "relative/path", "file://host/x", "http:///nohost", "file:rel"} {
		if _, err := c.Fetch(context.Background(), Source{URL: u, Checksum: hex64}); err == nil {
			t.Errorf("Fetch(%q) succeeded", u)
		}
	}
	if _, err := c.Fetch(context.Background(), Source{URL: "/x", Checksum: "sha1:abc"}); err == nil {
		t.Error("Fetch with a bad checksum succeeded")
	}
}

// TestRevalidate: a source verified by a checksum-file URL can change at
// its origin; after RevalidateAfter a HEAD decides whether to download.
func TestRevalidate(t *testing.T) {
	srv := newImageServer(t)
	clock := newFakeClock()
	v1 := randomBytes(10000, 12)
	mod := time.Now().Add(-48 * time.Hour)
	u := srv.put("/d/img", v1, mod)
	srv.put("/d/SHA256SUMS", []byte(sha256Hex(v1)+"  img\n"), mod)
	src := Source{URL: u, Checksum: srv.URL + "/d/SHA256SUMS"}
	c, _ := newTestCache(t, Config{Now: clock.Now, RevalidateAfter: 10 * time.Minute})
	ctx := context.Background()

	fetch := func(want []byte) {
		t.Helper()
		p, err := c.Fetch(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		assertMaster(t, p, want)
	}
	fetch(v1)
	clock.Advance(5 * time.Minute)
	fetch(v1)
	if g, h := srv.count("GET /d/img"), srv.count("HEAD /d/img"); g != 1 || h != 0 {
		t.Fatalf("within the window: %d GETs, %d HEADs; want 1, 0", g, h)
	}
	clock.Advance(6 * time.Minute)
	fetch(v1)
	if g, h := srv.count("GET /d/img"), srv.count("HEAD /d/img"); g != 1 || h != 1 {
		t.Fatalf("unchanged origin: %d GETs, %d HEADs; want 1, 1", g, h)
	}
	fetch(v1) // revalidated just now: no request
	if h := srv.count("HEAD /d/img"); h != 1 {
		t.Fatalf("after revalidation: %d HEADs, want 1", h)
	}

	v2 := randomBytes(12000, 13)
	srv.put("/d/img", v2, mod.Add(time.Hour))
	srv.put("/d/SHA256SUMS", []byte(sha256Hex(v2)+"  img\n"), mod.Add(time.Hour))
	clock.Advance(11 * time.Minute)
	fetch(v2)
	if g, h := srv.count("GET /d/img"), srv.count("HEAD /d/img"); g != 2 || h != 2 {
		t.Fatalf("changed origin: %d GETs, %d HEADs; want 2, 2", g, h)
	}
}

func TestRevalidateFileSource(t *testing.T) {
	clock := newFakeClock()
	dir := t.TempDir()
	img := filepath.Join(dir, "img")
	v1, v2 := randomBytes(1000, 14), randomBytes(1001, 15)
	os.WriteFile(img, v1, 0o644)
	sums := filepath.Join(dir, "SUMS")
	os.WriteFile(sums, []byte(sha256Hex(v1)+"  img\n"), 0o644)
	c, _ := newTestCache(t, Config{Now: clock.Now, AllowUnverified: true})
	src := Source{URL: img, Checksum: "file://" + sums}
	p, err := c.Fetch(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	assertMaster(t, p, v1)
	os.WriteFile(img, v2, 0o644)
	os.WriteFile(sums, []byte(sha256Hex(v2)+"  img\n"), 0o644)
	clock.Advance(DefaultRevalidateAfter + time.Second)
	if p, err = c.Fetch(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	assertMaster(t, p, v2)
}

func statT(t *testing.T, p string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}

// TestLookupAndDownloadHooks: the first Fetch of an image is a miss that downloads its bytes,
// later ones hit; a source without a fixed digest that must be revalidated and is unchanged
// hits too, without a download.
func TestLookupAndDownloadHooks(t *testing.T) {
	srv := newImageServer(t)
	img := randomBytes(200<<10, 7)
	mod := time.Now().Add(-time.Hour)
	url := srv.put("/images/hooks.img", img, mod)
	srv.put("/images/SUMS", []byte(sha256Hex(img)+"  hooks.img\n"), mod)
	var mu sync.Mutex
	var hits, misses int
	var bytes int64
	clock := newFakeClock()
	c, _ := newTestCache(t, Config{Now: clock.Now,
		OnLookup: func(hit bool) {
			mu.Lock()
			defer mu.Unlock()
			if hit {
				hits++
			} else {
				misses++
			}
		},
		OnDownloaded: func(n int64) { mu.Lock(); bytes += n; mu.Unlock() }})
	ctx := context.Background()
	fixed := Source{URL: url, Checksum: "sha256:" + sha256Hex(img)}
	for range 3 {
		if _, err := c.Fetch(ctx, fixed); err != nil {
			t.Fatal(err)
		}
	}
	byFile := Source{URL: url, Checksum: srv.URL + "/images/SUMS"}
	if _, err := c.Fetch(ctx, byFile); err != nil { // same digest, other key: downloads once more
		t.Fatal(err)
	}
	clock.Advance(DefaultRevalidateAfter + time.Minute)
	if _, err := c.Fetch(ctx, byFile); err != nil { // revalidated, unchanged
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 3 || misses != 2 || bytes != 2*int64(len(img)) {
		t.Errorf("hits %d, misses %d, downloaded %d bytes; want 3, 2, %d", hits, misses, bytes, 2*len(img))
	}
}
