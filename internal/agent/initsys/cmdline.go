// Package initsys is what ironwork-agent does as PID 1 of the deploy ramdisk before the agent
// proper starts: mount the kernel filesystems, print progress to the console, load the kernel
// modules shipped in the ramdisk in dependency order, bring the NICs up and configure them with
// DHCPv4, and, on a fatal error, keep the message on the console and reboot instead of exiting
// (PID 1 exiting panics the kernel).
//
// It owns the machine's early state and nothing else: it does not talk to the Ironic API, does
// not touch disks and keeps no package-level state. Parsing (kernel command line, modules.dep)
// is pure and testable anywhere; the rest needs root and is meant for PID 1.
package initsys

import "strings"

// ParseCmdline splits a kernel command line into parameters. "key=value" gives key → value,
// a bare word gives word → "". Double quotes group spaces ("a=b c" stays one value, quotes
// removed), as the kernel's own parser does. A later parameter overrides an earlier one.
func ParseCmdline(s string) map[string]string {
	params := map[string]string{}
	for _, word := range splitCmdline(s) {
		key, value, _ := strings.Cut(word, "=")
		if key == "" {
			continue
		}
		params[key] = value
	}
	return params
}

func splitCmdline(s string) []string {
	var (
		words  []string
		cur    strings.Builder
		quoted bool
		inWord bool
	)
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			inWord = true
		case !quoted && (r == ' ' || r == '\t' || r == '\n' || r == '\r'):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// BootMAC returns the MAC address of PXELINUX's BOOTIF parameter ("01-52-54-00-aa-bb-cc": a
// hardware type byte, then the address) as "52:54:00:aa:bb:cc", or "" when s is not one.
func BootMAC(s string) string {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "-")
	if len(parts) == 7 {
		parts = parts[1:]
	}
	if len(parts) != 6 {
		return ""
	}
	for _, p := range parts {
		if len(p) != 2 || strings.Trim(p, "0123456789abcdef") != "" {
			return ""
		}
	}
	return strings.Join(parts, ":")
}
