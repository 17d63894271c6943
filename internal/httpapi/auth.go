package httpapi

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/policy"
)

// BasicAuth checks HTTP basic credentials against an htpasswd file of bcrypt hashes, as
// Ironic's http_basic auth strategy does. A line may go on with a project and roles:
//
//	user:hash                      a system administrator (what every line meant before)
//	user:hash:project:role1,role2  a caller in project (its id) with those roles
//	user:hash::reader              a system-scoped caller with those roles (no project)
//
// Roles imply others as Keystone's do (admin implies member, member implies reader).
type BasicAuth struct {
	users map[string][]byte
	who   map[string]policy.Principal
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
	a := &BasicAuth{users: map[string][]byte{}, who: map[string]policy.Principal{}, ok: map[string]bool{},
		compare: bcrypt.CompareHashAndPassword}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		user, rest, found := strings.Cut(t, ":")
		if !found || user == "" {
			return nil, fmt.Errorf("auth user file %s line %d: expected user:hash[:project:roles]", path, line)
		}
		hash, scope, scoped := strings.Cut(rest, ":")
		who, err := basicPrincipal(user, scope, scoped)
		if err != nil {
			return nil, fmt.Errorf("auth user file %s line %d: %w", path, line, err)
		}
		if !strings.HasPrefix(hash, "$2a$") && !strings.HasPrefix(hash, "$2b$") && !strings.HasPrefix(hash, "$2y$") {
			return nil, fmt.Errorf("auth user file %s line %d: only bcrypt hashes are supported (htpasswd -B)", path, line)
		}
		if _, dup := a.users[user]; !dup {
			a.users[user] = []byte(hash)
			a.who[user] = who
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

// basicPrincipal is the caller a user file's line describes: scope is what follows the hash
// (present when scoped): "project:role1,role2".
func basicPrincipal(user, scope string, scoped bool) (policy.Principal, error) {
	if !scoped {
		return policy.Principal{UserID: user, UserName: user, System: true,
			Roles: []string{"admin", "manager", "member", "reader"}}, nil
	}
	project, roleList, ok := strings.Cut(scope, ":")
	if !ok || strings.Contains(roleList, ":") {
		return policy.Principal{}, errors.New("expected user:hash:project:role1,role2")
	}
	var roles []string
	for r := range strings.SplitSeq(roleList, ",") {
		if r = strings.TrimSpace(r); r != "" {
			roles = append(roles, r)
		}
	}
	if len(roles) == 0 {
		return policy.Principal{}, errors.New("a user with a scope needs at least one role")
	}
	p := policy.Principal{UserID: user, UserName: user, ProjectID: project, ProjectName: project,
		Roles: policy.ImplyRoles(roles)}
	if project == "" {
		p.System = true
	}
	return p, nil
}

// Authenticate implements Authenticator.
func (a *BasicAuth) Authenticate(r *http.Request) (policy.Principal, error) {
	user, err := a.AuthenticateUser(r)
	if err != nil {
		return policy.Principal{}, err
	}
	return a.who[user], nil
}

// AuthenticateUser checks the request's credentials and returns the user's name.
func (a *BasicAuth) AuthenticateUser(r *http.Request) (string, error) {
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
		who, err := auth.Authenticate(r)
		if err == nil && !who.System && !who.Unrestricted {
			// Metrics cover every project's nodes: system-scoped callers only.
			err = ironwork.Errorf(ironwork.EFORBIDDEN, "Access was denied to the following resource: metrics")
		}
		if err != nil {
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
