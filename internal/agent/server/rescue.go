package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ironwork/ironwork/internal/shacrypt"
)

// RescueUser is the account rescue.finalize_rescue sets up, as IPA's rescue ramdisks name it.
const RescueUser = "rescue"

// finalizeRescue is IPA's rescue.finalize_rescue: it gives the rescue user the password
// whose crypt hash the conductor sends (hashed: true, as Ironic sends it; a clear-text
// password with hashed false is hashed here with SHA-512-crypt), then tells the agent to stop
// its API and heartbeats so that the tenant's network never reaches them. The user is root's
// equal (uid 0): the rescue environment has no sudo, and repairing a disk needs root.
func (m *Machine) finalizeRescue(_ context.Context, p map[string]any, _ ProgressFunc) (any, error) {
	hash, err := rescueHash(p)
	if err != nil {
		return nil, err
	}
	if m.RescueRoot == "" {
		return nil, errors.New("this agent does not run in a ramdisk (no rescue root): it cannot set up a rescue user")
	}
	if err := WriteRescueUser(m.RescueRoot, hash); err != nil {
		return nil, err
	}
	m.log().Info("rescue user set up; the agent stops its API", "user", RescueUser)
	if m.Rescued != nil {
		m.Rescued()
	}
	return nil, nil
}

// validateRescue checks finalize_rescue's parameters before it starts.
func validateRescue(p map[string]any) error {
	_, err := rescueHash(p)
	return err
}

// rescueHash returns the crypt hash to store: the one given, or the hash of the password.
func rescueHash(p map[string]any) (string, error) {
	pw, ok := p["rescue_password"].(string)
	if !ok || strings.TrimSpace(pw) == "" {
		return "", errors.New("rescue_password is required and must be a non-empty string")
	}
	hashed := false
	switch h := p["hashed"].(type) {
	case nil:
	case bool:
		hashed = h
	default:
		return "", errors.New("hashed must be a boolean")
	}
	if !hashed {
		h, err := shacrypt.Generate(pw)
		if err != nil {
			return "", fmt.Errorf("hash the rescue password: %w", err)
		}
		return h, nil
	}
	// A hash goes into /etc/shadow as one field of one line.
	if !strings.HasPrefix(pw, "$") || strings.ContainsAny(pw, ":\n\r\x00 \t") {
		return "", errors.New("rescue_password is not a crypt hash (hashed is true)")
	}
	return pw, nil
}

// WriteRescueUser writes the rescue user with the password hash into root's /etc/passwd,
// /etc/shadow and /etc/group, replacing an earlier rescue user, keeping the other lines.
func WriteRescueUser(root, hash string) error {
	etc := filepath.Join(root, "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return fmt.Errorf("write rescue user: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(root, "root"), 0o700); err != nil {
		return fmt.Errorf("write rescue user: %w", err)
	}
	files := []struct {
		name string
		perm os.FileMode
		add  []string
	}{
		{"passwd", 0o644, []string{"root:x:0:0:root:/root:/bin/sh", RescueUser + ":x:0:0:rescue:/root:/bin/sh"}},
		{"shadow", 0o600, []string{"root:*:1:0:99999:7:::", RescueUser + ":" + hash + ":1:0:99999:7:::"}},
		{"group", 0o644, []string{"root:x:0:"}},
	}
	for _, f := range files {
		if err := mergeLines(filepath.Join(etc, f.name), f.perm, f.add); err != nil {
			return fmt.Errorf("write rescue user: %w", err)
		}
	}
	return nil
}

// mergeLines rewrites path with its lines whose first field is not that of a line of add,
// then add. The file is replaced atomically.
func mergeLines(path string, perm os.FileMode, add []string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	names := map[string]bool{}
	for _, l := range add {
		name, _, _ := strings.Cut(l, ":")
		names[name] = true
	}
	var out []string
	for _, l := range strings.Split(string(old), "\n") {
		name, _, _ := strings.Cut(l, ":")
		if l == "" || names[name] {
			continue
		}
		out = append(out, l)
	}
	out = append(out, add...)
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(strings.Join(out, "\n")+"\n"), perm); err != nil {
		return err
	}
	if err := os.Chmod(tmp, perm); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
