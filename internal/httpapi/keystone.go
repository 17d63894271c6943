package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/policy"
)

// KeystoneConfig is how the API reaches Keystone to validate tokens, as keystonemiddleware's
// [keystone_authtoken] section: the service user's password credentials.
type KeystoneConfig struct {
	// AuthURL is Keystone's identity endpoint, e.g. http://keystone:5000/v3 (a URL without
	// the /v3 suffix gets it added).
	AuthURL           string `toml:"auth_url"`
	Username          string `toml:"username"`
	Password          string `toml:"password"`
	UserDomainName    string `toml:"user_domain_name"`
	ProjectName       string `toml:"project_name"`
	ProjectDomainName string `toml:"project_domain_name"`
	// CacheTime is how long a validated token is trusted before Keystone is asked again
	// (keystonemiddleware's token_cache_time; default 60 s, never past the token's expiry).
	// It bounds how long a revoked token keeps working.
	CacheTime time.Duration `toml:"-"`
	// CacheSize bounds the number of cached tokens (default 10,000).
	CacheSize int `toml:"-"`
}

// Keystone authenticates X-Auth-Token headers against a Keystone v3 server: each new token is
// validated with GET /v3/auth/tokens under the service user's own token, and cached until its
// expiry or CacheTime, whichever comes first, so that a revoked token is refused within
// CacheTime. Keystone's answer 404 (unknown, expired or revoked token) is a 401.
type Keystone struct {
	cfg    KeystoneConfig
	client *http.Client
	log    *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	service string    // the service user's token
	svcExp  time.Time // its expiry
	cache   map[[32]byte]cachedToken
}

type cachedToken struct {
	who   policy.Principal
	until time.Time
}

var _ Authenticator = (*Keystone)(nil)

// ErrKeystone is wrapped by errors about talking to Keystone (the API answers 503 then).
var ErrKeystone = errors.New("keystone")

// NewKeystone returns a Keystone authenticator; client nil means a client with a 10 s timeout.
func NewKeystone(cfg KeystoneConfig, client *http.Client, log *slog.Logger) (*Keystone, error) {
	if cfg.AuthURL == "" || cfg.Username == "" || cfg.Password == "" {
		return nil, errors.New("keystone auth needs auth_url, username and password")
	}
	cfg.AuthURL = strings.TrimRight(cfg.AuthURL, "/")
	if !strings.HasSuffix(cfg.AuthURL, "/v3") {
		cfg.AuthURL += "/v3"
	}
	if cfg.UserDomainName == "" {
		cfg.UserDomainName = "Default"
	}
	if cfg.ProjectDomainName == "" {
		cfg.ProjectDomainName = "Default"
	}
	if cfg.CacheTime <= 0 {
		cfg.CacheTime = time.Minute
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 10000
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Keystone{cfg: cfg, client: client, log: log, now: time.Now, cache: map[[32]byte]cachedToken{}}, nil
}

// Challenge is the WWW-Authenticate value of a 401, as keystonemiddleware sends it: where to
// get a token.
func (k *Keystone) Challenge() string { return `Keystone uri="` + k.cfg.AuthURL + `"` }

// Authenticate implements Authenticator.
func (k *Keystone) Authenticate(r *http.Request) (policy.Principal, error) {
	tok := r.Header.Get("X-Auth-Token")
	if tok == "" {
		return policy.Principal{}, ironwork.Errorf(ironwork.EUNAUTHORIZED, "Authentication required")
	}
	if len(tok) > 8192 || strings.ContainsAny(tok, "\r\n\x00") {
		return policy.Principal{}, ironwork.Errorf(ironwork.EUNAUTHORIZED, "The request you have made requires authentication.")
	}
	key := sha256.Sum256([]byte(tok))
	now := k.now()
	k.mu.Lock()
	c, ok := k.cache[key]
	k.mu.Unlock()
	if ok && now.Before(c.until) {
		return c.who, nil
	}
	who, expires, err := k.validate(r.Context(), tok)
	if err != nil {
		k.mu.Lock()
		delete(k.cache, key)
		k.mu.Unlock()
		if !errors.Is(err, errBadToken) {
			k.log.Error("validate token with keystone", "error", err)
			return policy.Principal{}, ironwork.Errorf(ironwork.EUNAVAILABLE, "The identity service is not available.")
		}
		return policy.Principal{}, ironwork.Errorf(ironwork.EUNAUTHORIZED, "The request you have made requires authentication.")
	}
	until := now.Add(k.cfg.CacheTime)
	if expires.Before(until) {
		until = expires
	}
	k.mu.Lock()
	if len(k.cache) >= k.cfg.CacheSize {
		for h, e := range k.cache { // drop the expired; if none, any one
			if !now.Before(e.until) {
				delete(k.cache, h)
			}
		}
		for h := range k.cache {
			if len(k.cache) < k.cfg.CacheSize {
				break
			}
			delete(k.cache, h)
		}
	}
	k.cache[key] = cachedToken{who: who, until: until}
	k.mu.Unlock()
	return who, nil
}

// errBadToken is Keystone refusing a token: unknown, malformed, expired or revoked.
var errBadToken = errors.New("token refused by keystone")

// tokenBody is the part of Keystone's token document the API uses.
type tokenBody struct {
	Token struct {
		ExpiresAt time.Time `json:"expires_at"`
		User      struct {
			ID, Name string
			Domain   struct{ ID, Name string }
		} `json:"user"`
		Project *struct {
			ID, Name string
			Domain   struct{ ID, Name string }
		} `json:"project"`
		System map[string]any `json:"system"`
		Roles  []struct{ ID, Name string }
	} `json:"token"`
}

func (b *tokenBody) principal() policy.Principal {
	t := b.Token
	p := policy.Principal{UserID: t.User.ID, UserName: t.User.Name, UserDomainID: t.User.Domain.ID}
	if t.Project != nil {
		p.ProjectID, p.ProjectName, p.ProjectDomainID = t.Project.ID, t.Project.Name, t.Project.Domain.ID
	}
	if all, _ := t.System["all"].(bool); all {
		p.System = true
	}
	for _, r := range t.Roles {
		p.Roles = append(p.Roles, r.Name)
	}
	return p
}

// validate asks Keystone about tok with the service token, getting a new service token once
// when Keystone refuses the cached one.
func (k *Keystone) validate(ctx context.Context, tok string) (policy.Principal, time.Time, error) {
	for attempt := 0; ; attempt++ {
		svc, err := k.serviceToken(ctx, attempt > 0)
		if err != nil {
			return policy.Principal{}, time.Time{}, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.cfg.AuthURL+"/auth/tokens", nil)
		if err != nil {
			return policy.Principal{}, time.Time{}, fmt.Errorf("validate token: %w", err)
		}
		req.Header.Set("X-Auth-Token", svc)
		req.Header.Set("X-Subject-Token", tok)
		resp, err := k.client.Do(req)
		if err != nil {
			return policy.Principal{}, time.Time{}, fmt.Errorf("%w: validate token: %w", ErrKeystone, err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		resp.Body.Close()
		if err != nil {
			return policy.Principal{}, time.Time{}, fmt.Errorf("%w: read token: %w", ErrKeystone, err)
		}
		switch {
		case resp.StatusCode == http.StatusOK:
			var b tokenBody
			if err := json.Unmarshal(body, &b); err != nil {
				return policy.Principal{}, time.Time{}, fmt.Errorf("%w: decode token: %w", ErrKeystone, err)
			}
			if !k.now().Before(b.Token.ExpiresAt) {
				return policy.Principal{}, time.Time{}, errBadToken
			}
			return b.principal(), b.Token.ExpiresAt, nil
		case resp.StatusCode == http.StatusUnauthorized && attempt == 0:
			continue // the service token expired or was revoked: get another
		case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusBadRequest:
			return policy.Principal{}, time.Time{}, errBadToken
		default:
			return policy.Principal{}, time.Time{}, fmt.Errorf("%w: validate token: status %d", ErrKeystone, resp.StatusCode)
		}
	}
}

// serviceToken returns the service user's token, getting one with password auth when there is
// none, it expires within a minute, or renew is set.
func (k *Keystone) serviceToken(ctx context.Context, renew bool) (string, error) {
	k.mu.Lock()
	svc, exp := k.service, k.svcExp
	k.mu.Unlock()
	if !renew && svc != "" && k.now().Add(time.Minute).Before(exp) {
		return svc, nil
	}
	var body struct {
		Auth struct {
			Identity struct {
				Methods  []string `json:"methods"`
				Password struct {
					User struct {
						Name     string            `json:"name"`
						Password string            `json:"password"`
						Domain   map[string]string `json:"domain"`
					} `json:"user"`
				} `json:"password"`
			} `json:"identity"`
			Scope *struct {
				Project struct {
					Name   string            `json:"name"`
					Domain map[string]string `json:"domain"`
				} `json:"project"`
			} `json:"scope,omitempty"`
		} `json:"auth"`
	}
	id := &body.Auth.Identity
	id.Methods = []string{"password"}
	id.Password.User.Name, id.Password.User.Password = k.cfg.Username, k.cfg.Password
	id.Password.User.Domain = map[string]string{"name": k.cfg.UserDomainName}
	if k.cfg.ProjectName != "" {
		body.Auth.Scope = &struct {
			Project struct {
				Name   string            `json:"name"`
				Domain map[string]string `json:"domain"`
			} `json:"project"`
		}{}
		body.Auth.Scope.Project.Name = k.cfg.ProjectName
		body.Auth.Scope.Project.Domain = map[string]string{"name": k.cfg.ProjectDomainName}
	}
	data, err := json.Marshal(&body)
	if err != nil {
		return "", fmt.Errorf("encode service auth: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, k.cfg.AuthURL+"/auth/tokens", bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("get service token: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	// Asking for a token twice is harmless: marked idempotent (the header is not sent), the
	// request is retried on a kept-alive connection the server closed meanwhile.
	req.Header["Idempotency-Key"] = nil
	resp, err := k.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w: get service token: %w", ErrKeystone, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("%w: get service token for %s: status %d", ErrKeystone, k.cfg.Username, resp.StatusCode)
	}
	var tb tokenBody
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&tb); err != nil {
		return "", fmt.Errorf("%w: decode service token: %w", ErrKeystone, err)
	}
	tok := resp.Header.Get("X-Subject-Token")
	if tok == "" {
		return "", fmt.Errorf("%w: service token missing from the answer", ErrKeystone)
	}
	k.mu.Lock()
	k.service, k.svcExp = tok, tb.Token.ExpiresAt
	k.mu.Unlock()
	return tok, nil
}
