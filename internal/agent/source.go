package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// source is the image on its HTTP server: the body of one GET from offset 0
// (read sequentially, hashed, counted) plus Range requests for random access.
type source struct {
	client   *http.Client
	url      string
	auth     string // Authorization header value, or empty
	safeURL  string // without the query string, for errors and logs
	size     int64  // total bytes, -1 if the server did not say
	rangeOK  bool   // the first GET was answered 206 to "Range: bytes=0-"
	body     io.ReadCloser
	buffered *bufio.Reader
	cancel   context.CancelFunc
}

// redactURL drops the query and user info: Swift temp URLs and presigned S3
// URLs carry their signature there.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	u.RawQuery = ""
	u.User = nil
	u.Fragment = ""
	return u.String()
}

// openSource starts the download. It asks for "bytes=0-" so that a 206 answer
// tells us the server honours ranges without a second round trip, and sends
// Accept-Encoding: identity so net/http does not transparently gunzip: the
// checksum is over the bytes as stored on the server.
func openSource(ctx context.Context, client *http.Client, rawURL, auth string) (*source, error) {
	if client == nil {
		client = http.DefaultClient
	}
	s := &source{client: client, url: rawURL, auth: auth, safeURL: redactURL(rawURL), size: -1}
	ctx, s.cancel = context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("download image %s: %w", s.safeURL, err)
	}
	req.Header.Set("Range", "bytes=0-")
	req.Header.Set("Accept-Encoding", "identity")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := client.Do(req)
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("download image %s: %w", s.safeURL, scrubURLError(err))
	}
	switch resp.StatusCode {
	case http.StatusOK:
		s.size = resp.ContentLength
	case http.StatusPartialContent:
		start, _, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil || start != 0 {
			resp.Body.Close()
			s.cancel()
			return nil, fmt.Errorf("download image %s: bad Content-Range %q", s.safeURL, resp.Header.Get("Content-Range"))
		}
		s.size = total
		s.rangeOK = true
	default:
		resp.Body.Close()
		s.cancel()
		return nil, &HTTPStatusError{URL: s.safeURL, Status: resp.Status, Code: resp.StatusCode}
	}
	s.body = resp.Body
	s.buffered = bufio.NewReaderSize(resp.Body, 64<<10)
	return s, nil
}

// scrubURLError removes the URL from a *url.Error so signatures in the query
// do not reach last_error.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// head returns up to headLen leading bytes without consuming them.
func (s *source) head() ([]byte, error) {
	b, err := s.buffered.Peek(headLen)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, &ShortReadError{Got: int64(len(b)), Want: s.size, Err: err}
	}
	return b, nil
}

func (s *source) close() {
	if s.body != nil {
		s.body.Close()
	}
	s.cancel()
}

// getRange fetches [off, off+n) with a Range request.
func (s *source) getRange(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("read image range %d+%d: %w", off, n, err)
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	req.Header.Set("Accept-Encoding", "identity")
	if s.auth != "" {
		req.Header.Set("Authorization", s.auth)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read image range %d+%d: %w", off, n, scrubURLError(err))
	}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, _, _, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil || start != off {
			resp.Body.Close()
			return nil, fmt.Errorf("read image range %d+%d: bad Content-Range %q", off, n, resp.Header.Get("Content-Range"))
		}
		return resp.Body, nil
	case http.StatusOK:
		resp.Body.Close()
		return nil, fmt.Errorf("read image range %d+%d: %w", off, n, ErrRangeUnsupported)
	default:
		resp.Body.Close()
		return nil, &HTTPStatusError{URL: s.safeURL, Status: resp.Status, Code: resp.StatusCode}
	}
}

// parseContentRange parses "bytes START-END/TOTAL"; TOTAL "*" gives -1.
func parseContentRange(v string) (start, end, total int64, err error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !ok {
		return 0, 0, 0, fmt.Errorf("parse Content-Range %q: no bytes unit", v)
	}
	span, tot, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, 0, fmt.Errorf("parse Content-Range %q: no total", v)
	}
	a, b, ok := strings.Cut(span, "-")
	if !ok {
		return 0, 0, 0, fmt.Errorf("parse Content-Range %q: no span", v)
	}
	if start, err = strconv.ParseInt(a, 10, 64); err != nil {
		return 0, 0, 0, fmt.Errorf("parse Content-Range %q: %w", v, err)
	}
	if end, err = strconv.ParseInt(b, 10, 64); err != nil || end < start {
		return 0, 0, 0, fmt.Errorf("parse Content-Range %q: bad end", v)
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil || total <= end {
			return 0, 0, 0, fmt.Errorf("parse Content-Range %q: bad total", v)
		}
	}
	return start, end, total, nil
}

// countingReader counts and hashes what passes through it and turns an early
// end of the body into a ShortReadError.
type countingReader struct {
	r    io.Reader
	sum  *checksum
	n    int64
	want int64 // -1 unknown
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.sum.h.Write(p[:n])
		c.n += int64(n)
		if c.want >= 0 && c.n > c.want {
			return n, fmt.Errorf("image download: server sent more than the %d bytes it announced", c.want)
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		if c.want >= 0 && c.n < c.want {
			return n, &ShortReadError{Got: c.n, Want: c.want}
		}
	default:
		return n, &ShortReadError{Got: c.n, Want: c.want, Err: err}
	}
	return n, err
}
