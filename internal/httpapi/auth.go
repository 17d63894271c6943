package httpapi

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/ironwork/ironwork"
)

// BasicAuth checks HTTP basic credentials against an htpasswd file of bcrypt hashes, as
// Ironic's http_basic auth strategy does.
type BasicAuth struct {
	users map[string][]byte
	// dummy is a bcrypt hash of a random password at the highest cost of the file's hashes:
	// an unknown user's password is compared against it, so that an unknown user costs the
	// same work as a known user with a wrong password and user names cannot be told apart by
	// the time of the answer.
	dummy []byte
	// compare is bcrypt.CompareHashAndPassword; tests count its calls.
	compare func(hash, password []byte) error
	mu      sync.Mutex
	ok      map[string]bool // SHA-256 of "user\x00password" pairs already verified, to spare bcrypt's cost
}

var _ Authenticator = (*BasicAuth)(nil)

// LoadBasicAuth reads an htpasswd file; every entry must be a bcrypt hash ($2a$, $2b$, $2y$).
func LoadBasicAuth(path string) (*BasicAuth, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read auth user file: %w", err)
	}
	defer f.Close()
	a := &BasicAuth{users: map[string][]byte{}, ok: map[string]bool{}, compare: bcrypt.CompareHashAndPassword}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		user, hash, found := strings.Cut(t, ":")
		if !found || user == "" {
			return nil, fmt.Errorf("auth user file %s line %d: expected user:hash", path, line)
		}
		if !strings.HasPrefix(hash, "$2a$") && !strings.HasPrefix(hash, "$2b$") && !strings.HasPrefix(hash, "$2y$") {
			return nil, fmt.Errorf("auth user file %s line %d: only bcrypt hashes are supported (htpasswd -B)", path, line)
		}
		if _, dup := a.users[user]; !dup {
			a.users[user] = []byte(hash)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read auth user file: %w", err)
	}
	if len(a.users) == 0 {
		return nil, fmt.Errorf("auth user file %s has no users", path)
	}
	cost := bcrypt.MinCost
	for user, hash := range a.users {
		c, err := bcrypt.Cost(hash)
		if err != nil {
			return nil, fmt.Errorf("auth user file %s, user %s: %w", path, user, err)
		}
		cost = max(cost, c)
	}
	pw := make([]byte, 32)
	if _, err := rand.Read(pw); err != nil {
		return nil, fmt.Errorf("make dummy password: %w", err)
	}
	if a.dummy, err = bcrypt.GenerateFromPassword([]byte(base64.RawStdEncoding.EncodeToString(pw)), cost); err != nil {
		return nil, fmt.Errorf("make dummy bcrypt hash: %w", err)
	}
	return a, nil
}

// Authenticate implements Authenticator.
func (a *BasicAuth) Authenticate(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", ironwork.Errorf(ironwork.EUNAUTHORIZED, "Authorization required")
	}
	scheme, token, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Basic") {
		return "", invalid("Unsupported authorization type \"%s\"", scheme)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(token))
	if err != nil {
		return "", invalid("Could not decode authorization token")
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", invalid("Could not decode authorization token")
	}
	sum := sha256.Sum256([]byte(user + "\x00" + pass))
	key := string(sum[:])
	a.mu.Lock()
	cached := a.ok[key]
	a.mu.Unlock()
	if cached {
		return user, nil
	}
	hash, known := a.users[user]
	if !known {
		hash = a.dummy // the same work as for a known user, and never a match
	}
	if err := a.compare(hash, []byte(pass)); err != nil || !known {
		return "", ironwork.Errorf(ironwork.EUNAUTHORIZED, "Incorrect username or password")
	}
	a.mu.Lock()
	if len(a.ok) > 1024 {
		clear(a.ok)
	}
	a.ok[key] = true
	a.mu.Unlock()
	return user, nil
}

// RequireAuth serves h to requests that auth accepts and answers the others as the API does
// (401 in Ironic's error format); a nil auth lets every request through.
func RequireAuth(auth Authenticator, h http.Handler) http.Handler {
	if auth == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := auth.Authenticate(r); err != nil {
			status := statusOf(ironwork.ErrorCode(err))
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Basic realm="Baremetal API"`)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			w.Write(errorBody(status, ironwork.ErrorMessage(err)))
			return
		}
		h.ServeHTTP(w, r)
	})
}
