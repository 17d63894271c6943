package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ironwork/ironwork/internal/agent/server"
)

// autoTLSMinor is the API microversion that accepts agent_verify_ca in heartbeats.
const autoTLSMinor = 68

// startAutoTLS switches the command API to TLS when the API supports it (IPA's automatic
// TLS): a certificate for the callback URL's host, the listener wrapped, the callback URL
// made https. It returns the callback URL, the certificate to send in heartbeats ("" when
// the API is too old and the agent stays on plain HTTP) and the listener to serve.
func startAutoTLS(ctx context.Context, client *apiClient, callback string, ln net.Listener, env agentEnv) (string, string, net.Listener, error) {
	minor, err := client.maxMinor(ctx)
	if err != nil || minor < autoTLSMinor {
		env.log.Warn("the API does not support automatic agent TLS; serving commands over plain HTTP", "minor", minor, logKeyError, err)
		return callback, "", ln, nil
	}
	u, err := url.Parse(callback)
	if err != nil || u.Hostname() == "" {
		return "", "", nil, fmt.Errorf("callback URL %q: no host to make a certificate for", callback)
	}
	start := time.Now()
	at, err := server.NewAutoTLS(u.Hostname(), start)
	if err != nil {
		return "", "", nil, fmt.Errorf("automatic TLS: %w", err)
	}
	sum := sha256.Sum256(at.Certificate.Certificate[0])
	env.console.Printf("auto-TLS: certificate for %s (sha256 %s) made in %s", u.Hostname(), hex.EncodeToString(sum[:8]), time.Since(start).Round(time.Millisecond))
	u.Scheme = "https"
	return u.String(), at.PEM, at.Listener(ln), nil
}

// maxMinor reads the API's newest microversion from its root (GET /).
func (c *apiClient) maxMinor(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var root struct {
		DefaultVersion struct {
			Version string `json:"version"`
		} `json:"default_version"`
	}
	if _, err := c.do(ctx, http.MethodGet, "/", nil, &root); err != nil {
		return 0, fmt.Errorf("read the API's versions: %w", err)
	}
	major, minor, ok := strings.Cut(root.DefaultVersion.Version, ".")
	n, err := strconv.Atoi(minor)
	if !ok || major != "1" || err != nil {
		return 0, fmt.Errorf("the API's root gives no version 1.x (%q)", root.DefaultVersion.Version)
	}
	return n, nil
}
