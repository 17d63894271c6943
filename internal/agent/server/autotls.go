package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// AutoTLS is the agent's automatic TLS (IPA's enable_auto_tls): a key and a self-signed
// certificate made at start for the address the agent advertises. The command API is served
// with it, and the certificate (PEM) goes to the conductor in the heartbeat's agent_verify_ca,
// which pins it for this boot. The key never leaves the process.
type AutoTLS struct {
	Certificate tls.Certificate
	PEM         string // the certificate, as agent_verify_ca carries it
}

// autoTLSLifetime is how long the certificate is valid. The conductor pins the exact
// certificate and ignores its dates; a real Ironic driving this agent checks them.
const autoTLSLifetime = 365 * 24 * time.Hour

// NewAutoTLS makes an ECDSA P-256 key and a certificate for host (an IP address or a DNS
// name), self-signed, valid from an hour before now (clocks differ) for a year.
func NewAutoTLS(host string, now time.Time) (AutoTLS, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return AutoTLS{}, fmt.Errorf("make TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return AutoTLS{}, fmt.Errorf("make certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: host, Organization: []string{"ironwork-agent"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(autoTLSLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		// Its own issuer: a client that trusts it as a CA file (Ironic's verify=<file>)
		// accepts it as the root of a one-certificate chain.
		IsCA: true,
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return AutoTLS{}, fmt.Errorf("make certificate: %w", err)
	}
	return AutoTLS{
		Certificate: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		PEM:         string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
	}, nil
}

// Listener wraps ln so that the command API is served over TLS 1.2 or newer with the
// certificate.
func (a AutoTLS) Listener(ln net.Listener) net.Listener {
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{a.Certificate}, MinVersion: tls.VersionTLS12})
}
