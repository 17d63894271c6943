package conductor

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/ironwork/ironwork"
)

// maxAgentCertificate bounds the PEM an agent may send as agent_verify_ca: one certificate
// with a generous chain would still fit.
const maxAgentCertificate = 16 << 10

// Errors of ParseAgentCertificate; the API answers them with 400.
var (
	ErrAgentCertificateTooLong = errors.New("agent_verify_ca is longer than 16 KiB")
	ErrAgentCertificateNoPEM   = errors.New("agent_verify_ca holds no PEM CERTIFICATE block")
)

// ParseAgentCertificate reads the certificate an agent sends in its heartbeat's
// agent_verify_ca (Ironic's automatic agent TLS, API 1.68): PEM, one CERTIFICATE block (the
// first is used when there are more), and returns it as DER.
func ParseAgentCertificate(s string) ([]byte, error) {
	if len(s) > maxAgentCertificate {
		return nil, ErrAgentCertificateTooLong
	}
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, ErrAgentCertificateNoPEM
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return nil, fmt.Errorf("parse agent_verify_ca: %w", err)
		}
		return b.Bytes, nil
	}
}

// pinAgentCertificate records the certificate a heartbeat carries as the one the node's agent
// must present (driver_internal_info agent_verify_ca, Ironic's key; Ironic keeps a file path
// there, we keep the PEM so that every conductor can verify). The first certificate of a boot
// is pinned; a different one later is refused, as Ironic refuses it, until the ramdisk boots
// again (ForgetAgent). Once a certificate is pinned the callback URL must be https: an agent
// may not fall back to plain HTTP. requireTLS (Ironic's [agent]require_tls) refuses plain HTTP
// callbacks altogether. newPin says the heartbeat's certificate was pinned now.
func pinAgentCertificate(n *ironwork.Node, hb Heartbeat, requireTLS bool) (newPin bool, err error) {
	pinned := LoadAgent(n).VerifyCA
	if hb.AgentVerifyCA != "" {
		der, err := ParseAgentCertificate(hb.AgentVerifyCA)
		if err != nil {
			return false, ironwork.Errorf(ironwork.EINVALID, "Invalid agent_verify_ca: %s", err)
		}
		if pinned != "" {
			old, err := ParseAgentCertificate(pinned)
			if err != nil || !bytes.Equal(old, der) {
				return false, ironwork.Errorf(ironwork.EINVALID, "Detected change in ramdisk provided \"agent_verify_ca\"")
			}
		}
		newPin = pinned == ""
		pinned = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		internalInfo(n)[agentVerifyCAKey] = pinned
	}
	https := strings.HasPrefix(hb.CallbackURL, "https://")
	switch {
	case pinned != "" && !https:
		return false, ironwork.Errorf(ironwork.EINVALID, "The agent of node %s presented a TLS certificate in this boot; its callback_url must be https, not %q", n.UUID, hb.CallbackURL)
	case requireTLS && !https:
		return false, ironwork.Errorf(ironwork.EINVALID, "Agent is required to use TLS")
	}
	return newPin, nil
}
