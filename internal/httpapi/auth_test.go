package httpapi

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/ironwork/ironwork"
)

// newBasicAuth writes an htpasswd file with one user at the given bcrypt cost and loads it,
// counting the bcrypt comparisons the authenticator makes.
func newBasicAuth(t testing.TB, cost int) (*BasicAuth, *[][]byte) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("right"), cost)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(file, []byte("alice:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := LoadBasicAuth(file)
	if err != nil {
		t.Fatal(err)
	}
	var compared [][]byte
	inner := a.compare
	a.compare = func(h, p []byte) error {
		compared = append(compared, h)
		return inner(h, p)
	}
	return a, &compared
}

// TestUnknownUserCostsABcryptComparison checks that an unknown user's password goes through
// one bcrypt comparison against a hash of the same cost as the file's, as a known user's
// wrong password does, and is refused.
func TestUnknownUserCostsABcryptComparison(t *testing.T) {
	const cost = 6
	a, compared := newBasicAuth(t, cost)
	for _, tc := range []struct {
		user, pass string
		ok         bool
	}{
		{"alice", "wrong", false},
		{"mallory", "wrong", false},
		{"mallory", "right", false},
		{"alice", "right", true},
	} {
		t.Run(tc.user+"/"+tc.pass, func(t *testing.T) {
			*compared = nil
			r := httptest.NewRequest("GET", "/v1/nodes", nil)
			r.SetBasicAuth(tc.user, tc.pass)
			user, err := a.AuthenticateUser(r)
			if tc.ok {
				if err != nil || user != tc.user {
					t.Fatalf("Authenticate: %q %v", user, err)
				}
			} else if ironwork.ErrorCode(err) != ironwork.EUNAUTHORIZED {
				t.Fatalf("Authenticate: %q %v, want EUNAUTHORIZED", user, err)
			}
			if len(*compared) != 1 {
				t.Fatalf("%d bcrypt comparisons, want 1", len(*compared))
			}
			got, err := bcrypt.Cost((*compared)[0])
			if err != nil || got != cost {
				t.Fatalf("compared against a hash of cost %d (%v), want %d", got, err, cost)
			}
		})
	}
}

// BenchmarkBasicAuthRefusal reports the time of a refusal for a known user with a wrong
// password and for an unknown user: they should be of the same order (both one bcrypt
// comparison at the file's cost).
func BenchmarkBasicAuthRefusal(b *testing.B) {
	a, _ := newBasicAuth(b, bcrypt.DefaultCost)
	for _, user := range []string{"alice", "mallory"} {
		b.Run(user, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/v1/nodes", nil)
			r.SetBasicAuth(user, "wrong")
			for b.Loop() {
				if _, err := a.Authenticate(r); err == nil {
					b.Fatal("a wrong password was accepted")
				}
			}
		})
	}
}
