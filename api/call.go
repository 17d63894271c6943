package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
)

// ErrNoAnswer marks a call that got no HTTP answer: the connection was refused, reset or
// timed out before a status line arrived, or the answer's body was cut off. Callers branch
// on it with errors.Is (retry, wait for the peer) instead of treating it as a refusal.
var ErrNoAnswer = errors.New("no answer")

// DefaultAnswerLimit bounds the answer body Call reads when Request.Limit is 0.
const DefaultAnswerLimit = 16 << 20

// Request is one JSON-over-HTTP call: the CLI's to the API, the agent's to the API, the
// conductor's to an agent.
type Request struct {
	Method string
	// URL is the whole URL. Only its scheme, host and path appear in errors: a query may carry
	// a secret (the agent's token).
	URL string
	// Header is added to the request (microversion, credentials); Accept and Content-Type are
	// set by Call.
	Header http.Header
	// Body is encoded as JSON when not nil.
	Body any
	// Limit bounds the answer's size; 0 means DefaultAnswerLimit.
	Limit int64
}

// Sent reports, for a call that got no answer, whether the request was written out in full
// (so the peer may have acted on it). A request never written is safe to send again.
type Sent struct{ Written bool }

// Call sends r with hc (nil means http.DefaultClient) and decodes a 2xx JSON answer into out
// when out is not nil and the answer has a body. An answer with another status is an *Error
// carrying the status and the body's message (Ironic's error format, the agent's, or the
// text). A call that got no answer wraps ErrNoAnswer; sent, when not nil, says whether the
// request was written before the failure.
func Call(ctx context.Context, hc *http.Client, r Request, out any, sent *Sent) error {
	where := r.Method + " " + redactURL(r.URL)
	var rd io.Reader
	if r.Body != nil {
		b, err := json.Marshal(r.Body)
		if err != nil {
			return fmt.Errorf("%s: encode request: %w", where, err)
		}
		rd = bytes.NewReader(b)
	}
	if sent != nil {
		*sent = Sent{}
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			WroteRequest: func(i httptrace.WroteRequestInfo) { sent.Written = i.Err == nil },
		})
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, rd)
	if err != nil {
		return fmt.Errorf("%s: build request: %w", where, unwrapURLError(err))
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Accept", "application/json")
	if r.Body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w: %w", where, ErrNoAnswer, unwrapURLError(err))
	}
	defer resp.Body.Close()
	limit := r.Limit
	if limit <= 0 {
		limit = DefaultAnswerLimit
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("%s: read answer: %w: %w", where, ErrNoAnswer, unwrapURLError(err))
	}
	if int64(len(data)) > limit {
		return fmt.Errorf("%s: the answer is larger than %d bytes", where, limit)
	}
	if resp.StatusCode/100 != 2 {
		return &Error{Status: resp.StatusCode, Message: ErrorMessage(data)}
	}
	if out != nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s: decode answer: %w", where, err)
		}
	}
	return nil
}

// redactURL is u without its query and credentials.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		if i := strings.IndexAny(u, "?#"); i >= 0 {
			return u[:i]
		}
		return u
	}
	p.RawQuery, p.Fragment, p.User = "", "", nil
	return p.String()
}

// unwrapURLError drops net/http's *url.Error wrapper, whose text repeats the whole URL (and
// so any secret in its query); Call names the call itself.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
