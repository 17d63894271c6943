package agent

import (
	"fmt"
	"net"
)

// The BMC's address, as IPA reads it with "ipmitool lan print <channel>": the IPv4 address
// LAN configuration parameter (3) of the first channel that has one. The transport is the
// kernel's IPMI device (/dev/ipmi0, ipmi_devintf), asked directly (bmc_linux.go).

// IPMI Get LAN Configuration Parameters (NetFn Transport 0x0c, command 0x02).
const (
	ipmiNetFnTransport = 0x0c
	ipmiGetLANConfig   = 0x02
	ipmiLANParamIPv4   = 3
	ipmiMaxChannel     = 11 // IPA tries channels 1 to 11
)

// lanIPRequest is the request body for one channel's IPv4 address.
func lanIPRequest(channel int) []byte {
	return []byte{byte(channel & 0x0f), ipmiLANParamIPv4, 0, 0}
}

// parseLANIP reads a Get LAN Configuration Parameters answer for the IPv4 address:
// completion code, parameter revision, four address bytes. 0.0.0.0 is no address.
func parseLANIP(resp []byte) (string, error) {
	if len(resp) < 1 {
		return "", fmt.Errorf("IPMI LAN parameters: empty answer")
	}
	if resp[0] != 0 {
		return "", fmt.Errorf("IPMI LAN parameters: completion code %#02x", resp[0])
	}
	if len(resp) < 6 {
		return "", fmt.Errorf("IPMI LAN parameters: %d bytes, want 6", len(resp))
	}
	ip := net.IPv4(resp[2], resp[3], resp[4], resp[5])
	if ip.Equal(net.IPv4zero) {
		return "", nil
	}
	return ip.String(), nil
}
