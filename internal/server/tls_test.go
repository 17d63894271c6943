package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/internal/server"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

// testCA is a certificate authority made for one test, and a server certificate it signed
// for 127.0.0.1, written as PEM files.
type testCA struct {
	pool                      *x509.CertPool
	caFile, certFile, keyFile string
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ironwork test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	ca := testCA{pool: x509.NewCertPool(), caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem")}
	ca.pool.AddCert(caCert)
	for file, block := range map[string]*pem.Block{ca.caFile: {Type: "CERTIFICATE", Bytes: caDER},
		ca.certFile: {Type: "CERTIFICATE", Bytes: der}, ca.keyFile: {Type: "EC PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca
}

// TestAPIOverHTTPS serves the API with a certificate of a CA made by the test: a client that
// trusts the CA gets answers with https links, one that does not is refused in the handshake,
// and plain HTTP to the port gets no API answer. With IRONWORK_TEST_BAREMETAL_CLI=1 the
// baremetal CLI lists nodes with --os-cacert too.
func TestAPIOverHTTPS(t *testing.T) {
	ca := newTestCA(t)
	srv := startServer(t, sqlstoretest.Targets()[0].DSN(t), func(c *server.Config) {
		c.TLSCertFile, c.TLSKeyFile = ca.certFile, ca.keyFile
	})
	if !strings.HasPrefix(srv.URL(), "https://") {
		t.Fatalf("URL %s", srv.URL())
	}
	trusting := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}}
	resp, err := trusting.Get(srv.URL() + "/v1")
	if err != nil {
		t.Fatal(err)
	}
	var v1 struct {
		Links []struct{ Href string } `json:"links"`
	}
	json.NewDecoder(resp.Body).Decode(&v1)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(v1.Links) == 0 || !strings.HasPrefix(v1.Links[0].Href, "https://") {
		t.Fatalf("GET /v1 over HTTPS: %d %+v", resp.StatusCode, v1)
	}

	plainTLS := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}}
	if _, err := plainTLS.Get(srv.URL() + "/v1"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a client that does not trust the CA: %v", err)
	}
	if resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + srv.Addr() + "/v1"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP got an API answer")
		}
	}

	// The CLI takes about a minute on a loaded CI machine (Python's start-up): opt in.
	if os.Getenv("IRONWORK_TEST_BAREMETAL_CLI") == "" {
		t.Log("IRONWORK_TEST_BAREMETAL_CLI is not set: the baremetal CLI check is skipped")
		return
	}
	if _, err := exec.LookPath("baremetal"); err != nil {
		t.Skip("baremetal CLI not installed")
	}
	cmd := exec.Command("baremetal", "--os-endpoint", srv.URL(), "--os-auth-type", "none", "--os-cacert", ca.caFile, "node", "list", "-f", "json")
	cmd.Env = append(os.Environ(), "OS_CLOUD=")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("baremetal node list over HTTPS took %s", time.Since(start).Round(time.Millisecond))
	if err != nil || strings.TrimSpace(string(out)) != "[]" {
		t.Fatalf("baremetal node list over HTTPS: %v\n%s", err, out)
	}
}

// TestTLSConfigNeedsBoth refuses a certificate without its key and the reverse.
func TestTLSConfigNeedsBoth(t *testing.T) {
	cfg := server.Default()
	cfg.TLSCertFile = "/nonexistent.pem"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "tls_cert_file and tls_key_file") {
		t.Fatalf("Validate: %v", err)
	}
}
