package conductor

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/agent/server"
)

func newCert(t testing.TB, host string) string {
	t.Helper()
	at, err := server.NewAutoTLS(host, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return at.PEM
}

// TestPinAgentCertificate: the first certificate of a boot is pinned, the same one again is
// accepted, another one or a fall back to plain HTTP is refused and leaves the pin, the pin
// ends with the boot (ForgetAgent), and require_tls refuses plain HTTP callbacks.
func TestPinAgentCertificate(t *testing.T) {
	a, b := newCert(t, "10.0.0.5"), newCert(t, "10.0.0.5")
	n := &ironwork.Node{UUID: "1be26c0b-03f2-4d2e-ae87-c02d7f33c781"}
	https, plain := "https://10.0.0.5:9999", "http://10.0.0.5:9999"
	steps := []struct {
		name       string
		url, cert  string
		requireTLS bool
		want       string // "" = accepted; else a part of the error
		pinned     string
	}{
		{"plain HTTP without a certificate", plain, "", false, "", ""},
		{"plain HTTP refused by require_tls", plain, "", true, "Agent is required to use TLS", ""},
		{"first certificate pinned", https, a, true, "", a},
		{"the same certificate again", https, a, false, "", a},
		{"no certificate: the pin stays", https, "", false, "", a},
		{"another certificate refused", https, b, false, `Detected change in ramdisk provided "agent_verify_ca"`, a},
		{"plain HTTP after a pin refused", plain, "", false, "callback_url must be https", a},
		{"garbage refused", https, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", false, "Invalid agent_verify_ca", a},
		{"no PEM refused", https, "not a certificate", false, "Invalid agent_verify_ca", a},
	}
	for _, s := range steps {
		newPin, err := pinAgentCertificate(n, Heartbeat{CallbackURL: s.url, AgentVerifyCA: s.cert}, s.requireTLS)
		if newPin != (s.name == "first certificate pinned") {
			t.Errorf("%s: newly pinned %v", s.name, newPin)
		}
		switch {
		case s.want == "" && err != nil:
			t.Errorf("%s: %v", s.name, err)
		case s.want != "" && (err == nil || !strings.Contains(ironwork.ErrorMessage(err), s.want)):
			t.Errorf("%s: error %v, want %q", s.name, err, s.want)
		case s.want != "" && ironwork.ErrorCode(err) != ironwork.EINVALID:
			t.Errorf("%s: error code %v, want EINVALID (400)", s.name, ironwork.ErrorCode(err))
		}
		if got := LoadAgent(n).VerifyCA; got != s.pinned {
			t.Errorf("%s: pinned %q, want %q", s.name, got, s.pinned)
		}
	}
	ForgetAgent(n)
	if LoadAgent(n).VerifyCA != "" {
		t.Fatal("the pin outlived the boot")
	}
	if _, err := pinAgentCertificate(n, Heartbeat{CallbackURL: https, AgentVerifyCA: b}, false); err != nil || LoadAgent(n).VerifyCA != b {
		t.Fatalf("the next boot's certificate: %v", err)
	}
	// Leaving the agent's states forgets it too, as the token.
	(&Conductor{}).forgetTokenOnLeaving(n, ironwork.CleanWait, ironwork.CleanFailed)
	if LoadAgent(n).VerifyCA != "" {
		t.Fatal("the pin outlived the agent's states")
	}
}

func TestParseAgentCertificate(t *testing.T) {
	a := newCert(t, "agent.example")
	if der, err := ParseAgentCertificate("junk before\n" + a + "more"); err != nil || len(der) == 0 {
		t.Fatalf("a certificate with text around it: %v", err)
	}
	key := "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n"
	if _, err := ParseAgentCertificate(key + a); err != nil {
		t.Fatalf("a certificate after another block: %v", err)
	}
	if _, err := ParseAgentCertificate(key); !errors.Is(err, ErrAgentCertificateNoPEM) {
		t.Fatalf("a key alone: %v", err)
	}
	if _, err := ParseAgentCertificate(strings.Repeat(a, 40)); !errors.Is(err, ErrAgentCertificateTooLong) {
		t.Fatalf("40 certificates: %v", err)
	}
}

func FuzzParseAgentCertificate(f *testing.F) {
	f.Add(newCert(f, "10.1.2.3"))
	f.Add("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		der, err := ParseAgentCertificate(s)
		if err == nil && (len(der) == 0 || len(s) > maxAgentCertificate) {
			t.Fatalf("accepted %d bytes giving %d bytes of DER", len(s), len(der))
		}
	})
}
