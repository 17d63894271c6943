package rpc

import (
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// Every JSON-RPC body between Ironwork processes travels sealed: the JSON text is encrypted
// and authenticated with XChaCha20-Poly1305 under a key derived (HKDF-SHA256) from a secret
// all the deployment's processes share. A request also binds its path and the time it was
// made, and its nonce is accepted once: a request that does not open, is older or newer than
// the replay window, or repeats a nonce is refused with 401 before it reaches the conductor.
// An answer is bound to the nonce of its request. Secrets in bodies (rescue passwords, config
// drives, agent tokens) therefore never cross in clear, with or without TLS.

// sealVersion is the version of the envelope's format and of the key derivation.
const sealVersion = 1

// replayWindow is how far a request's time may be from the receiver's clock.
const replayWindow = 60 * time.Second

// maxSealedBody bounds what a sealed body may weigh (the clear text is limited further by
// the handler).
const maxSealedBody = 96 << 20

// envelope is the body of a sealed request or answer.
type envelope struct {
	Version int    `json:"v"`
	Time    int64  `json:"ts,omitempty"` // Unix seconds; requests only
	Nonce   []byte `json:"nonce"`
	Box     []byte `json:"box"`
}

// ErrUnauthenticated is the reason for refusing a request or answer that is not sealed with
// the shared secret, is stale or is a replay.
var ErrUnauthenticated = errors.New("rpc message not authenticated")

// Sealer seals and opens JSON-RPC bodies with the deployment's shared secret.
type Sealer struct {
	aead cipher.AEAD
	now  func() time.Time

	// Nonces of accepted requests, in two generations swapped every 2*replayWindow: a nonce
	// is remembered for at least 2*replayWindow, longer than its request stays acceptable,
	// and checking or recording one costs the same however many there are.
	mu      sync.Mutex
	seen    map[string]struct{}
	older   map[string]struct{}
	rotated time.Time
}

// NewSealer derives the sealing key from secret, which must be at least 16 bytes.
func NewSealer(secret []byte) (*Sealer, error) {
	if len(secret) < 16 {
		return nil, fmt.Errorf("make rpc sealer: the shared secret has %d bytes, want at least 16", len(secret))
	}
	key, err := hkdf.Key(sha256.New, secret, nil, "ironwork json-rpc v1", chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("derive rpc key: %w", err)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("make rpc cipher: %w", err)
	}
	return &Sealer{aead: aead, now: time.Now, seen: map[string]struct{}{}, older: map[string]struct{}{}}, nil
}

// LoadSecretFile reads a shared secret from a file (surrounding white space ignored).
func LoadSecretFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read rpc secret file: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < 16 {
		return nil, fmt.Errorf("rpc secret file %s: the secret has %d bytes, want at least 16", path, len(b))
	}
	return b, nil
}

func requestAD(path string, ts int64) []byte {
	return []byte("ironwork-rpc/1 request " + path + " " + strconv.FormatInt(ts, 10))
}

func answerAD(requestNonce []byte) []byte {
	return []byte("ironwork-rpc/1 answer " + base64.StdEncoding.EncodeToString(requestNonce))
}

// seal returns the envelope of plain, with a fresh nonce.
func (s *Sealer) seal(plain, ad []byte, ts int64) ([]byte, []byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, fmt.Errorf("make rpc nonce: %w", err)
	}
	b, err := json.Marshal(envelope{Version: sealVersion, Time: ts, Nonce: nonce, Box: s.aead.Seal(nil, nonce, plain, ad)})
	return b, nonce, err
}

// openRequest opens a sealed request body for path, and refuses stale and replayed ones.
func (s *Sealer) openRequest(body []byte, path string) (plain, nonce []byte, err error) {
	var e envelope
	if err := json.Unmarshal(body, &e); err != nil {
		return nil, nil, fmt.Errorf("%w: not a sealed envelope", ErrUnauthenticated)
	}
	if e.Version != sealVersion || len(e.Nonce) != s.aead.NonceSize() {
		return nil, nil, fmt.Errorf("%w: envelope version %d or nonce size %d", ErrUnauthenticated, e.Version, len(e.Nonce))
	}
	now := s.now()
	at := time.Unix(e.Time, 0)
	if at.Before(now.Add(-replayWindow)) || at.After(now.Add(replayWindow)) {
		return nil, nil, fmt.Errorf("%w: made at %s, outside the %s window", ErrUnauthenticated, at.UTC().Format(time.RFC3339), replayWindow)
	}
	plain, err = s.aead.Open(nil, e.Nonce, e.Box, requestAD(path, e.Time))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the seal does not open with our key", ErrUnauthenticated)
	}
	// Only requests that opened are remembered, so forgeries cannot fill the cache.
	s.mu.Lock()
	defer s.mu.Unlock()
	key := string(e.Nonce)
	_, dup := s.seen[key]
	if _, old := s.older[key]; dup || old {
		return nil, nil, fmt.Errorf("%w: a replay of an earlier request", ErrUnauthenticated)
	}
	if now.Sub(s.rotated) > 2*replayWindow {
		s.older, s.seen, s.rotated = s.seen, map[string]struct{}{}, now
	}
	s.seen[key] = struct{}{}
	return plain, e.Nonce, nil
}

// openAnswer opens a sealed answer to the request whose nonce is given.
func (s *Sealer) openAnswer(body, requestNonce []byte) ([]byte, error) {
	var e envelope
	if err := json.Unmarshal(body, &e); err != nil || e.Version != sealVersion || len(e.Nonce) != s.aead.NonceSize() {
		return nil, fmt.Errorf("%w: the answer is not a sealed envelope", ErrUnauthenticated)
	}
	plain, err := s.aead.Open(nil, e.Nonce, e.Box, answerAD(requestNonce))
	if err != nil {
		return nil, fmt.Errorf("%w: the answer's seal does not open with our key", ErrUnauthenticated)
	}
	return plain, nil
}

// Handler refuses every request that is not sealed with the shared secret (401, logged
// without the body) and hands the others, opened, to next; next's answer goes back sealed.
func (s *Sealer) Handler(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxSealedBody))
		var plain, nonce []byte
		if err == nil {
			plain, nonce, err = s.openRequest(body, r.URL.Path)
		}
		if err != nil {
			log.Warn("rpc request refused", "remote", r.RemoteAddr, "path", r.URL.Path, "error", err)
			w.Header().Set("WWW-Authenticate", `Sealed realm="ironwork-rpc"`)
			writeResponse(w, http.StatusUnauthorized, response{Error: &rpcError{Code: -32001, Message: "Authentication required"}})
			return
		}
		r2 := r.Clone(r.Context())
		r2.Body, r2.ContentLength = io.NopCloser(bytes.NewReader(plain)), int64(len(plain))
		rec := &bufferedAnswer{header: http.Header{}, status: http.StatusOK}
		next.ServeHTTP(rec, r2)
		sealed, _, err := s.seal(rec.body.Bytes(), answerAD(nonce), 0)
		if err != nil {
			log.Error("seal rpc answer", "error", err)
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.status)
		w.Write(sealed)
	})
}

// bufferedAnswer keeps a handler's answer so that it can be sealed as a whole.
type bufferedAnswer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedAnswer) Header() http.Header         { return b.header }
func (b *bufferedAnswer) WriteHeader(status int)      { b.status = status }
func (b *bufferedAnswer) Write(p []byte) (int, error) { return b.body.Write(p) }

// Transport returns a round tripper that seals every request body with the shared secret and
// opens the answers, over base (http.DefaultTransport when nil).
func (s *Sealer) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &sealingTransport{s: s, base: base}
}

type sealingTransport struct {
	s    *Sealer
	base http.RoundTripper
}

func (t *sealingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var plain []byte
	if req.Body != nil {
		var err error
		plain, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read rpc request: %w", err)
		}
	}
	ts := t.s.now().Unix()
	sealed, nonce, err := t.s.seal(plain, requestAD(req.URL.Path, ts), ts)
	if err != nil {
		return nil, err
	}
	out := req.Clone(req.Context())
	out.Body, out.ContentLength = io.NopCloser(bytes.NewReader(sealed)), int64(len(sealed))
	out.GetBody = nil
	resp, err := t.base.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, fmt.Errorf("conductor at %s refused this process's rpc credentials (is the rpc secret the same on every process?): %w",
			req.URL.Host, ErrUnauthenticated)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSealedBody))
	if err != nil {
		return nil, fmt.Errorf("read rpc answer: %w", err)
	}
	opened, err := t.s.openAnswer(body, nonce)
	if err != nil {
		return nil, err
	}
	resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(opened)), int64(len(opened))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// TLSFiles are the optional TLS settings of the conductors' JSON-RPC: a conductor with Cert
// and Key serves https; CA, when set, is the only authority a caller trusts for conductors'
// certificates (the system's roots otherwise).
type TLSFiles struct {
	Cert, Key, CA string
}

// ServerConfig returns the TLS configuration a conductor serves with, or nil without a
// certificate.
func (f TLSFiles) ServerConfig() (*tls.Config, error) {
	if f.Cert == "" && f.Key == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("load rpc tls certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// ClientConfig returns the TLS configuration callers verify conductors with.
func (f TLSFiles) ClientConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CA == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("read rpc tls ca file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("rpc tls ca file %s: no PEM certificate in it", f.CA)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// Secure makes the router seal every call with s, and verify conductors' certificates with
// clientTLS when they serve https.
func (r *Router) Secure(s *Sealer, clientTLS *tls.Config) {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = clientTLS
	r.http = &http.Client{Timeout: r.http.Timeout, Transport: s.Transport(base)}
}
