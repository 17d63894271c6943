package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults, chosen like Ironic's [pxe]image_cache_size (20480 MiB) and
// [pxe]image_cache_ttl (10080 minutes).
const (
	DefaultMaxSize         = 20 << 30
	DefaultMaxAge          = 7 * 24 * time.Hour
	DefaultRevalidateAfter = 10 * time.Minute
	DefaultStallTimeout    = 2 * time.Minute
)

// Log attribute keys.
const (
	keyURL     = "url"
	keyPath    = "path"
	keyDest    = "dest"
	keyBytes   = "bytes"
	keyDigest  = "digest"
	keyElapsed = "elapsed"
	keyMBps    = "mb_per_s"
	keyRemoved = "removed"
	keyFreed   = "freed"
	keySize    = "size"
	keyMax     = "max_size"
	keyErr     = "err"
)

// Config configures a Cache. Zero fields take the defaults above.
type Config struct {
	// Dir holds the master files, their .meta sidecars and temp files.
	// Destinations given to Link should be on the same filesystem, or
	// Link copies instead of linking.
	Dir string
	// MaxSize is the size in bytes Clean keeps the masters under, counting
	// masters in use (which it cannot remove). Default 20 GiB.
	MaxSize int64
	// MaxAge removes masters not used (fetched or linked) for this long.
	// Default 7 days.
	MaxAge time.Duration
	// RevalidateAfter is how long a master of a source WITHOUT a fixed
	// digest (checksum-file URL, or unverified) is trusted before the
	// origin is asked whether it changed. Sources with a fixed digest are
	// content-addressed and never revalidated. Default 10 minutes.
	RevalidateAfter time.Duration
	// StallTimeout aborts a download that receives no byte for this long.
	// Default 2 minutes.
	StallTimeout time.Duration
	// AllowUnverified lets Fetch accept a Source with an empty Checksum.
	AllowUnverified bool
	// HTTPClient fetches http(s) sources and checksum files. Default: a
	// client with a 1 minute response-header timeout and no total timeout.
	HTTPClient *http.Client
	// Now is the clock for use times, ages and revalidation (tests).
	Now func() time.Time
	// OnProgress, if set, is called during a download at most about once
	// a second, and once when it completes, with the URL (credentials and
	// query removed), the bytes written and the total (-1 if unknown). It
	// runs on the downloading goroutine and must not block.
	OnProgress func(url string, done, total int64)
	// OnLookup, if set, is called once per Fetch or Link that found its master, with hit
	// true when a valid master was used without a download. OnDownloaded, if set, is called
	// with the size of each completed download. Both must be safe for concurrent use and quick.
	OnLookup     func(hit bool)
	OnDownloaded func(bytes int64)
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.Dir == "" {
		return errors.New("image cache: Dir is required")
	}
	if c.MaxSize < 0 || c.MaxAge < 0 || c.RevalidateAfter < 0 || c.StallTimeout < 0 {
		return errors.New("image cache: sizes and durations must not be negative")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.MaxSize == 0 {
		c.MaxSize = DefaultMaxSize
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.RevalidateAfter == 0 {
		c.RevalidateAfter = DefaultRevalidateAfter
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = DefaultStallTimeout
	}
	if c.HTTPClient == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.ResponseHeaderTimeout = time.Minute
		c.HTTPClient = &http.Client{Transport: t}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Source names an image: where to get it and how to verify it.
type Source struct {
	// URL is http://, https://, file:///abs/path or an absolute path.
	URL string
	// Checksum is "sha256:HEX", "sha512:HEX", "md5:HEX", a bare hex digest
	// (algorithm from its length), or the http(s):// or file:// URL of a
	// checksum file. Empty only with Config.AllowUnverified.
	Checksum string
	// Authorization, when set, is sent as the HTTP Authorization header of the image's
	// requests (an OCI registry's bearer token). It is a secret: it is not part of the
	// master's key, and never logged or recorded.
	Authorization string
}

// Cache is a directory of verified master images. It is safe for
// concurrent use; several Caches must not share a Dir.
type Cache struct {
	cfg Config
	dir string
	log *slog.Logger

	// cleanMu is held for writing by Clean while it removes masters and
	// for reading while a master is looked up, touched and linked, so a
	// master is never removed between being found and being linked.
	cleanMu sync.RWMutex

	mu      sync.Mutex
	flights map[string]*flight // by master key; guarded by mu
}

// flight is one download (or revalidation) shared by every Fetch of the
// same source that arrives while it runs.
type flight struct {
	done    chan struct{}
	cancel  context.CancelFunc
	waiters int // guarded by Cache.mu
	path    string
	err     error
}

// New creates the cache directory if needed. A nil log discards.
func New(cfg Config, log *slog.Logger) (*Cache, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("image cache dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create image cache dir: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Cache{cfg: cfg, dir: dir, log: log, flights: map[string]*flight{}}, nil
}

// Dir is the absolute cache directory.
func (c *Cache) Dir() string { return c.dir }

// source is a validated Source.
type source struct {
	u    *url.URL
	auth string // Source.Authorization
	safe string // URL without userinfo or query, for logs and errors
	spec checksumSpec
	key  string // master file name
}

// fixed reports whether the source names a fixed digest, which makes its
// master content-addressed (never revalidated).
func (s source) fixed() bool { return s.spec.d.algo != "" }

func (c *Cache) resolve(src Source) (source, error) {
	u, err := parseSourceURL(src.URL)
	if err != nil {
		return source{}, err
	}
	safe := redact(u)
	spec, err := parseChecksum(src.Checksum)
	if err != nil {
		return source{}, fmt.Errorf("image %s: %w", safe, err)
	}
	if spec.url == "" && spec.d.algo == "" && !c.cfg.AllowUnverified {
		return source{}, fmt.Errorf("image %s: %w", safe, ErrNoChecksum)
	}
	if spec.url != "" {
		if _, err := parseSourceURL(spec.url); err != nil {
			return source{}, fmt.Errorf("image %s: checksum %w", safe, err)
		}
	}
	sum := sha256.Sum256([]byte(u.String() + "\n" + strings.TrimSpace(src.Checksum)))
	return source{u: u, auth: src.Authorization, safe: safe, spec: spec, key: hex.EncodeToString(sum[:])}, nil
}

// parseSourceURL accepts http, https and file URLs and absolute paths.
func parseSourceURL(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if strings.HasPrefix(raw, "/") {
		return &url.URL{Scheme: "file", Path: filepath.Clean(raw)}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the URL, which may hold credentials.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("parse image URL: %w", err)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return nil, fmt.Errorf("parse image URL %s: no host", redact(u))
		}
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("parse image URL %s: file URL with a remote host", redact(u))
		}
		if !filepath.IsAbs(u.Path) {
			return nil, fmt.Errorf("parse image URL %s: file path is not absolute", redact(u))
		}
		u.Host = ""
		u.Path = filepath.Clean(u.Path)
	default:
		return nil, fmt.Errorf("parse image URL: unsupported scheme %q (want http, https or file)", u.Scheme)
	}
	return u, nil
}

// redact drops userinfo and the query (which may carry tokens such as Swift
// temp URL signatures).
func redact(u *url.URL) string {
	r := *u
	r.User = nil
	if r.RawQuery != "" {
		r.RawQuery = "REDACTED"
	}
	r.Fragment = ""
	return r.String()
}

func (c *Cache) masterPath(key string) string { return filepath.Join(c.dir, key) }
func (c *Cache) metaPath(key string) string   { return filepath.Join(c.dir, key+metaSuffix) }

// Fetch returns the path of a verified master copy of src, downloading it
// if the cache has none (or, for sources without a fixed digest, if the
// origin says it changed). Concurrent Fetches of one source share a single
// download. A caller whose ctx ends stops waiting; the download itself is
// cancelled only when every waiter has gone.
//
// The returned path is valid until a later Clean removes it; use Link to
// give a node a copy that Clean will not remove.
func (c *Cache) Fetch(ctx context.Context, src Source) (string, error) {
	s, err := c.resolve(src)
	if err != nil {
		return "", err
	}
	return c.fetch(ctx, s)
}

func (c *Cache) fetch(ctx context.Context, s source) (string, error) {
	if p, ok := c.hit(s); ok {
		c.lookedUp(true)
		return p, nil
	}
	return c.join(ctx, s)
}

// lookedUp reports a look-up to OnLookup.
func (c *Cache) lookedUp(hit bool) {
	if c.cfg.OnLookup != nil {
		c.cfg.OnLookup(hit)
	}
}

// hit is the fast path: a master that needs no revalidation.
func (c *Cache) hit(s source) (string, bool) {
	c.cleanMu.RLock()
	defer c.cleanMu.RUnlock()
	p := c.masterPath(s.key)
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return "", false
	}
	if !s.fixed() {
		m, err := c.readMeta(s.key)
		if err != nil || c.cfg.Now().Sub(m.Validated) >= c.cfg.RevalidateAfter {
			return "", false
		}
	}
	if err := c.touch(p, fi); err != nil {
		return "", false
	}
	return p, true
}

// touchEvery is how stale a master's atime may be before a use rewrites
// it: a hit then costs one lstat, not an inode write.
const touchEvery = 30 * time.Second

// touch records a use of the master p (whose Lstat is fi, or nil) in its
// atime, which Clean ages masters by.
func (c *Cache) touch(p string, fi os.FileInfo) error {
	now := c.cfg.Now()
	if fi != nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			at := time.Unix(st.Atim.Sec, st.Atim.Nsec)
			if d := now.Sub(at); d >= 0 && d < touchEvery {
				return nil
			}
		}
	}
	return os.Chtimes(p, now, time.Time{})
}

// join waits for the flight of s, starting it if there is none.
func (c *Cache) join(ctx context.Context, s source) (string, error) {
	c.mu.Lock()
	f, ok := c.flights[s.key]
	if !ok {
		dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight{done: make(chan struct{}), cancel: cancel}
		c.flights[s.key] = f
		go func() {
			defer cancel()
			p, err := c.refresh(dctx, s)
			c.mu.Lock()
			if c.flights[s.key] == f {
				delete(c.flights, s.key)
			}
			f.path, f.err = p, err
			c.mu.Unlock()
			close(f.done)
		}()
	}
	f.waiters++
	c.mu.Unlock()

	select {
	case <-f.done:
		return f.path, f.err
	case <-ctx.Done():
	}
	c.mu.Lock()
	f.waiters--
	last := f.waiters == 0
	if last {
		// Nobody wants this download any more. Forget it now so a new
		// Fetch starts afresh instead of joining a cancelled one.
		f.cancel()
		if c.flights[s.key] == f {
			delete(c.flights, s.key)
		}
	}
	c.mu.Unlock()
	if last {
		<-f.done // the download removes its temp file before it ends
	}
	return "", fmt.Errorf("fetch %s: %w", s.safe, context.Cause(ctx))
}

// active reports whether a flight for key is running.
func (c *Cache) active(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.flights[key]
	return ok
}

// refresh runs inside a flight: it reuses a valid master, revalidates one
// that needs it, or downloads.
func (c *Cache) refresh(ctx context.Context, s source) (string, error) {
	p := c.masterPath(s.key)
	if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
		fresh, err := c.revalidate(ctx, s)
		if err != nil {
			return "", err
		}
		if fresh {
			if err := c.touch(p, nil); err == nil {
				c.lookedUp(true)
				return p, nil
			}
		}
	}
	c.lookedUp(false)
	return c.download(ctx, s)
}
