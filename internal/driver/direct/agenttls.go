package direct

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/ironwork/ironwork/internal/conductor"
)

// endpoint is where a node's agent listens and how it is spoken to: its callback URL, its
// token, and the certificate it pinned at its first heartbeat (PEM; empty for none).
type endpoint struct {
	URL, Token, VerifyCA string
}

// endpointOf is the endpoint the node records for its agent.
func endpointOf(t *conductor.Task) endpoint {
	a := conductor.LoadAgent(t.Node)
	return endpoint{URL: a.URL, Token: a.Token, VerifyCA: a.VerifyCA}
}

// heartbeatEndpoint is the endpoint of the agent that just heartbeat: its URL and token as
// it sent them, and the certificate the node pinned (the heartbeat's own, checked and
// recorded by the conductor before the deploy interface sees it).
func heartbeatEndpoint(t *conductor.Task, hb conductor.Heartbeat) endpoint {
	return endpoint{URL: hb.CallbackURL, Token: hb.AgentToken, VerifyCA: conductor.LoadAgent(t.Node).VerifyCA}
}

// verifyCA is how https agents that pinned no certificate are verified (Ironic's
// [agent]verify_ca): against roots (nil: the system's), or not at all.
type verifyCA struct {
	roots    *x509.CertPool
	insecure bool
}

// ParseVerifyCA reads Ironic's [agent]verify_ca: "true" or "" (the system's roots), "false"
// (no verification), or the path of a PEM CA bundle. It applies only to agents that did not
// send their own certificate: a pinned one is always verified.
func ParseVerifyCA(s string) (roots *x509.CertPool, insecure bool, err error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "true", "1", "yes", "on":
		return nil, false, nil
	case "false", "0", "no", "off":
		return nil, true, nil
	}
	b, err := os.ReadFile(s)
	if err != nil {
		return nil, false, fmt.Errorf("read agent_verify_ca: %w", err)
	}
	roots = x509.NewCertPool()
	if !roots.AppendCertsFromPEM(b) {
		return nil, false, fmt.Errorf("agent_verify_ca %s holds no PEM certificate", s)
	}
	return roots, false, nil
}

// errCertificateMismatch: the agent presented another certificate than the one it pinned.
var errCertificateMismatch = errors.New("the agent presented a TLS certificate other than the one it sent in its heartbeat")

// clientFor is the HTTP client for one call to ep: the shared plain one, or, for an https
// agent, one whose TLS configuration accepts exactly the pinned certificate (or verifies
// against verify's roots when none is pinned). No connection is kept between calls, so a
// client per call costs nothing more.
func (a agentClient) clientFor(ep endpoint) (*http.Client, error) {
	if !strings.HasPrefix(ep.URL, "https://") {
		if ep.VerifyCA != "" {
			// The conductor refuses such heartbeats; a record written otherwise is no reason
			// to speak plain HTTP to an agent that pinned a certificate.
			return nil, fmt.Errorf("the agent pinned a TLS certificate but its URL %s is not https", ep.URL)
		}
		return a.http, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if ep.VerifyCA != "" {
		want, err := conductor.ParseAgentCertificate(ep.VerifyCA)
		if err != nil {
			return nil, fmt.Errorf("the pinned agent certificate: %w", err)
		}
		// The pin is the trust: the agent's certificate is self-signed for this boot, and
		// only the exact certificate its heartbeat carried is accepted. Its validity dates
		// are not checked (a ramdisk's clock may be off; the pin ends with the boot).
		tc.InsecureSkipVerify = true //nolint:gosec // replaced by VerifyConnection's exact match
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, want) {
				return errCertificateMismatch
			}
			return nil
		}
	} else {
		tc.RootCAs = a.verify.roots
		tc.InsecureSkipVerify = a.verify.insecure //nolint:gosec // the operator's choice, agent_verify_ca=false
	}
	tr := a.tr.Clone()
	tr.TLSClientConfig = tc
	return &http.Client{Transport: tr}, nil
}
