//go:build !linux

package agent

// readBMCAddress needs Linux's IPMI device; elsewhere there is none.
func readBMCAddress(string) (string, error) { return "", nil }
