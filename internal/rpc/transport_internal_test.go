package rpc

import (
	"errors"
	"testing"
	"time"
)

// TestSealerRefusesStaleAndForeignRequests checks the envelope's rules one by one: a request
// opens once, at its own path, within the time window, with the same secret.
func TestSealerRefusesStaleAndForeignRequests(t *testing.T) {
	s, err := NewSealer([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewSealer([]byte("short")); err == nil {
		t.Fatal("a 5-byte secret was accepted")
	}
	now := time.Now()
	sealAt := func(at time.Time, path string) []byte {
		b, _, err := s.seal([]byte(`{"method":"x"}`), requestAD(path, at.Unix()), at.Unix())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	fresh := sealAt(now, "/rpc")
	if plain, _, err := s.openRequest(fresh, "/rpc"); err != nil || string(plain) != `{"method":"x"}` {
		t.Fatalf("a fresh request: %q %v", plain, err)
	}
	other, _ := NewSealer([]byte("another secret, also 32 bytes..."))
	for name, tc := range map[string]struct {
		body []byte
		path string
		with *Sealer
	}{
		"replay":        {fresh, "/rpc", s},
		"too old":       {sealAt(now.Add(-2*replayWindow), "/rpc"), "/rpc", s},
		"from future":   {sealAt(now.Add(2*replayWindow), "/rpc"), "/rpc", s},
		"other path":    {sealAt(now, "/rpc"), "/other", s},
		"other secret":  {sealAt(now, "/rpc"), "/rpc", other},
		"not sealed":    {[]byte(`{"jsonrpc":"2.0","method":"x"}`), "/rpc", s},
		"not even JSON": {[]byte("\x00"), "/rpc", s},
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := tc.with.openRequest(tc.body, tc.path); !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("opened: %v, want ErrUnauthenticated", err)
			}
		})
	}
}

// BenchmarkSealOpen reports what sealing and opening a 400-byte request costs, with the
// replay memory growing as it does under load (its cost must not grow with it).
func BenchmarkSealOpen(b *testing.B) {
	s, err := NewSealer([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 400)
	for b.Loop() {
		ts := s.now().Unix()
		env, _, err := s.seal(body, requestAD("/rpc", ts), ts)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.openRequest(env, "/rpc"); err != nil {
			b.Fatal(err)
		}
	}
}
