package image

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"syscall"
	"time"
)

const (
	metaSuffix = ".meta"
	tmpPrefix  = ".tmp-"
	copyBuf    = 1 << 20
)

// HTTPStatusError is an http(s) response other than the one expected.
type HTTPStatusError struct {
	Method     string
	URL        string // without credentials or query
	StatusCode int
	Status     string
}

func (e *HTTPStatusError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %s", e.Method, e.URL, e.Status)
}

// ChecksumMismatchError is a download whose digest is not the expected one.
type ChecksumMismatchError struct {
	URL       string // without credentials or query
	Algorithm string
	Expected  string
	Actual    string
}

func (e *ChecksumMismatchError) Error() string {
	return fmt.Sprintf("verify %s: %s mismatch: expected %s, got %s", e.URL, e.Algorithm, e.Expected, e.Actual)
}

// ErrStalled is the cause of a download aborted after StallTimeout without data.
var ErrStalled = errors.New("download stalled")

// meta is stored next to a master as KEY.meta. It records what revalidation
// compares with the origin, and for operators where the master came from.
type meta struct {
	URL          string    `json:"url"` // redacted
	Digest       string    `json:"digest"`
	Verified     bool      `json:"verified"`
	Size         int64     `json:"size"`
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"last_modified,omitempty"`
	SourceMtime  time.Time `json:"source_mtime,omitzero"` // file sources
	Fetched      time.Time `json:"fetched"`
	Validated    time.Time `json:"validated"`
}

func (c *Cache) readMeta(key string) (meta, error) {
	var m meta
	f, err := os.OpenFile(c.metaPath(key), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return m, fmt.Errorf("read image meta: %w", err)
	}
	defer f.Close()
	if err := json.NewDecoder(io.LimitReader(f, 64<<10)).Decode(&m); err != nil {
		return m, fmt.Errorf("read image meta %s: %w", f.Name(), err)
	}
	return m, nil
}

// writeMeta replaces KEY.meta atomically.
func (c *Cache) writeMeta(key string, m meta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode image meta: %w", err)
	}
	f, err := os.CreateTemp(c.dir, tmpPrefix+key[:16]+"-meta-*")
	if err != nil {
		return fmt.Errorf("write image meta: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, c.metaPath(key))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write image meta: %w", err)
	}
	return nil
}

// origin is what the source said about the image when it was opened.
type origin struct {
	size         int64 // -1 if unknown
	etag         string
	lastModified string
	mtime        time.Time
}

// revalidate reports whether the existing master of s is still current.
func (c *Cache) revalidate(ctx context.Context, s source) (bool, error) {
	if s.fixed() {
		return true, nil
	}
	m, err := c.readMeta(s.key)
	if err != nil {
		c.log.Debug("image meta unreadable, downloading again", keyURL, s.safe, keyErr, err)
		return false, nil
	}
	now := c.cfg.Now()
	if now.Sub(m.Validated) < c.cfg.RevalidateAfter {
		return true, nil
	}
	same, err := c.unchanged(ctx, s, m)
	if err != nil {
		return false, err
	}
	if !same {
		c.log.Info("image changed at its origin, downloading again", keyURL, s.safe)
		return false, nil
	}
	m.Validated = now
	if err := c.writeMeta(s.key, m); err != nil {
		return false, err
	}
	return true, nil
}

// unchanged asks the origin whether the image differs from the one in m:
// for file sources by size and mtime; for http(s) by a HEAD request with
// If-None-Match / If-Modified-Since, where 304, or an equal ETag (else an
// equal Last-Modified), means unchanged. A server that gives neither
// validator is treated as changed, like Ironic does for non-Glance images
// without a modification time.
func (c *Cache) unchanged(ctx context.Context, s source, m meta) (bool, error) {
	if s.u.Scheme == "file" {
		fi, err := os.Stat(s.u.Path)
		if err != nil {
			return false, fmt.Errorf("revalidate %s: %w", s.safe, err)
		}
		return fi.Size() == m.Size && fi.ModTime().Equal(m.SourceMtime), nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, s.u.String(), nil)
	if err != nil {
		return false, fmt.Errorf("revalidate %s: %w", s.safe, err)
	}
	if m.ETag != "" {
		req.Header.Set("If-None-Match", m.ETag)
	}
	if m.LastModified != "" {
		req.Header.Set("If-Modified-Since", m.LastModified)
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return false, fmt.Errorf("revalidate HEAD %s: %w", s.safe, unwrapURLError(err))
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return true, nil
	case resp.StatusCode == http.StatusOK:
		if et := resp.Header.Get("ETag"); et != "" || m.ETag != "" {
			return et == m.ETag, nil
		}
		lm := resp.Header.Get("Last-Modified")
		return lm != "" && lm == m.LastModified, nil
	case resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotImplemented:
		return false, nil // no HEAD: download again
	default:
		return false, &HTTPStatusError{Method: http.MethodHead, URL: s.safe, StatusCode: resp.StatusCode, Status: resp.Status}
	}
}

// unwrapURLError drops url.Error's copy of the URL (it keeps the user name
// and query, which may be secret); callers add the redacted URL themselves.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// expected resolves the digest to verify s against; zero means unverified.
func (c *Cache) expected(ctx context.Context, s source) (digest, error) {
	if s.fixed() || s.spec.url == "" {
		return s.spec.d, nil
	}
	cu, err := parseSourceURL(s.spec.url)
	if err != nil {
		return digest{}, fmt.Errorf("checksum for %s: %w", s.safe, err)
	}
	body, _, err := c.open(ctx, cu, "")
	if err != nil {
		return digest{}, fmt.Errorf("checksum file for %s: %w", s.safe, err)
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, maxChecksumFile+1))
	if err != nil {
		return digest{}, fmt.Errorf("read checksum file %s: %w", redact(cu), unwrapURLError(err))
	}
	if len(b) > maxChecksumFile {
		return digest{}, fmt.Errorf("read checksum file %s: larger than %d bytes", redact(cu), maxChecksumFile)
	}
	d, err := parseChecksumFile(string(b), path.Base(s.u.Path))
	if err != nil {
		return digest{}, fmt.Errorf("checksum file %s: %w", redact(cu), err)
	}
	return d, nil
}

// open starts reading u (http GET or a local file).
func (c *Cache) open(ctx context.Context, u *url.URL, auth string) (io.ReadCloser, origin, error) {
	safe := redact(u)
	if u.Scheme == "file" {
		f, err := os.Open(u.Path)
		if err != nil {
			return nil, origin{}, fmt.Errorf("open %s: %w", safe, err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, origin{}, fmt.Errorf("open %s: %w", safe, err)
		}
		if !fi.Mode().IsRegular() {
			f.Close()
			return nil, origin{}, fmt.Errorf("open %s: not a regular file", safe)
		}
		return f, origin{size: fi.Size(), mtime: fi.ModTime()}, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, origin{}, fmt.Errorf("GET %s: %w", safe, err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, origin{}, fmt.Errorf("GET %s: %w", safe, unwrapURLError(err))
	}
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, origin{}, &HTTPStatusError{Method: http.MethodGet, URL: safe, StatusCode: resp.StatusCode, Status: resp.Status}
	}
	return resp.Body, origin{
		size:         resp.ContentLength,
		etag:         resp.Header.Get("ETag"),
		lastModified: resp.Header.Get("Last-Modified"),
	}, nil
}

// download fetches s into a temp file in Dir, hashing while writing, syncs
// and verifies it, then renames it over the master. On any error the temp
// file is removed and no master is created.
func (c *Cache) download(ctx context.Context, s source) (string, error) {
	start := time.Now()
	want, err := c.expected(ctx, s)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The stall timer covers the response headers too; every read resets it.
	stall := time.AfterFunc(c.cfg.StallTimeout, func() {
		cancel(fmt.Errorf("%w: no data for %s", ErrStalled, c.cfg.StallTimeout))
	})
	defer stall.Stop()
	body, org, err := c.open(ctx, s.u, s.auth)
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, ErrStalled) {
			return "", fmt.Errorf("download %s: %w", s.safe, cause)
		}
		return "", err
	}
	defer body.Close()
	if org.size > 0 {
		if err := c.makeRoom(ctx, org.size); err != nil {
			return "", fmt.Errorf("download %s: %w", s.safe, err)
		}
	}

	f, err := os.CreateTemp(c.dir, tmpPrefix+s.key[:16]+"-*")
	if err != nil {
		return "", fmt.Errorf("download %s: %w", s.safe, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()

	algo := want.algo
	if algo == "" {
		algo = SHA256 // unverified: record a digest anyway
	}
	h := digest{algo: algo}.newHash()
	buf := make([]byte, copyBuf)
	var n int64
	lastReport := time.Now()
	for {
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("download %s: %w", s.safe, context.Cause(ctx))
		}
		r, rerr := body.Read(buf)
		if r > 0 {
			stall.Reset(c.cfg.StallTimeout)
			if _, err := f.Write(buf[:r]); err != nil {
				return "", fmt.Errorf("download %s: %w", s.safe, err)
			}
			h.Write(buf[:r])
			n += int64(r)
			if c.cfg.OnProgress != nil && time.Since(lastReport) >= time.Second {
				lastReport = time.Now()
				c.cfg.OnProgress(s.safe, n, org.size)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if cause := context.Cause(ctx); cause != nil {
				rerr = cause
			}
			return "", fmt.Errorf("download %s after %d bytes: %w", s.safe, n, unwrapURLError(rerr))
		}
	}
	if org.size >= 0 && n != org.size {
		return "", fmt.Errorf("download %s: short body: got %d of %d bytes", s.safe, n, org.size)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if want.algo != "" && got != want.hex {
		return "", &ChecksumMismatchError{URL: s.safe, Algorithm: want.algo, Expected: want.hex, Actual: got}
	}
	if err := f.Chmod(0o644); err != nil {
		return "", fmt.Errorf("download %s: %w", s.safe, err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("download %s: sync: %w", s.safe, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("download %s: %w", s.safe, err)
	}

	now := c.cfg.Now()
	m := meta{
		URL: s.safe, Digest: algo + ":" + got, Verified: want.algo != "", Size: n,
		ETag: org.etag, LastModified: org.lastModified, SourceMtime: org.mtime,
		Fetched: now, Validated: now,
	}
	if err := c.writeMeta(s.key, m); err != nil {
		return "", err
	}
	p := c.masterPath(s.key)
	if err := os.Chtimes(tmp, now, now); err != nil {
		return "", fmt.Errorf("download %s: %w", s.safe, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return "", fmt.Errorf("download %s: install master: %w", s.safe, err)
	}
	ok = true
	if err := syncDir(c.dir); err != nil {
		return "", fmt.Errorf("download %s: %w", s.safe, err)
	}
	if c.cfg.OnProgress != nil {
		c.cfg.OnProgress(s.safe, n, n)
	}
	if c.cfg.OnDownloaded != nil {
		c.cfg.OnDownloaded(n)
	}
	el := time.Since(start)
	c.log.Info("image downloaded", keyURL, s.safe, keyPath, p, keyBytes, n, keyDigest, m.Digest,
		keyElapsed, el.Round(time.Millisecond), keyMBps, float64(n)/1e6/max(el.Seconds(), 1e-9))
	if !m.Verified {
		c.log.Warn("image stored without verification", keyURL, s.safe)
	}
	return p, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// makeRoom runs a clean before a download of need bytes that would take
// the cache past MaxSize (like Ironic cleans before fetching), and refuses
// a download the filesystem has no room for.
func (c *Cache) makeRoom(ctx context.Context, need int64) error {
	size, err := c.Size()
	if err != nil {
		return err
	}
	if size+need > c.cfg.MaxSize {
		if _, _, err := c.clean(ctx, need); err != nil {
			return err
		}
		if size, err = c.Size(); err == nil && size+need > c.cfg.MaxSize {
			c.log.Warn("image cache stays over its maximum size: the rest is in use",
				keySize, size+need, keyMax, c.cfg.MaxSize)
		}
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(c.dir, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", c.dir, err)
	}
	if free := int64(st.Bavail) * int64(st.Bsize); free < need {
		return fmt.Errorf("insufficient disk space in %s: need %d bytes, %d free", filepath.Clean(c.dir), need, free)
	}
	return nil
}
