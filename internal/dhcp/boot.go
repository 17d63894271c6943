package dhcp

import (
	"strconv"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// DHCP options the library has no helper for.
const (
	optVendorSpecific  = dhcpv4.GenericOptionCode(43)
	optClientMachineID = dhcpv4.GenericOptionCode(97)
	optIPXEEncap       = dhcpv4.GenericOptionCode(175)
	ipxeNoPXEDHCP      = 176 // sub-option of 175: skip waiting for proxyDHCP
	pxeDiscoveryCtl    = 6   // sub-option of 43
)

// Client identities found in option 60.
const (
	vendorPXE  = "PXEClient"
	vendorHTTP = "HTTPClient"
)

// bootInfo is what a boot-capable client is told to load.
type bootInfo struct {
	file string // option 67 / file field: a TFTP name or a URL
	http bool   // UEFI HTTP boot: reply option 60 "HTTPClient"
	ipxe bool
	arch int // -1 if not known
}

// isIPXE reports whether req comes from iPXE: user class "iPXE" (option
// 77) or iPXE's encapsulated options (175).
func isIPXE(req *dhcpv4.DHCPv4) bool {
	if req.Options.Has(optIPXEEncap) {
		return true
	}
	for _, uc := range req.UserClass() {
		if uc == "iPXE" {
			return true
		}
	}
	return false
}

// clientArch returns the client's architecture from option 93, or from the
// "PXEClient:Arch:NNNNN" form of option 60, or -1.
func clientArch(req *dhcpv4.DHCPv4) int {
	if archs := req.ClientArch(); len(archs) > 0 {
		return int(archs[0])
	}
	vc := req.ClassIdentifier()
	if _, rest, ok := strings.Cut(vc, ":Arch:"); ok {
		if len(rest) >= 5 {
			rest = rest[:5]
		}
		if n, err := strconv.Atoi(rest); err == nil && n >= 0 && n <= 0xffff {
			return n
		}
	}
	return -1
}

// bootFor returns what req should boot, and false if req is not a network
// boot client (no PXE/HTTP vendor class, no option 93, not iPXE) or asks
// for an architecture we have nothing for.
func (s *Server) bootFor(req *dhcpv4.DHCPv4, c Client) (bootInfo, bool) {
	mac := req.ClientHWAddr
	arch := clientArch(req)
	if isIPXE(req) {
		return bootInfo{file: s.cfg.ScriptURL(mac, c), ipxe: true, arch: arch}, true
	}
	vc := req.ClassIdentifier()
	pxe := strings.HasPrefix(vc, vendorPXE)
	httpc := strings.HasPrefix(vc, vendorHTTP)
	if !pxe && !httpc && arch < 0 {
		return bootInfo{}, false
	}
	switch iana.Arch(arch) {
	case iana.INTEL_X86PC:
		return bootInfo{file: s.cfg.BIOSBootFile, arch: arch}, true
	case iana.EFI_X86_64, iana.EFI_BC:
		return bootInfo{file: s.cfg.EFIBootFile, arch: arch}, true
	case iana.EFI_X86_64_HTTP:
		return bootInfo{file: s.cfg.HTTPBootURL + "/" + s.cfg.HTTPBootFile, http: true, arch: arch}, true
	case iana.EFI_ARM64:
		return bootInfo{file: s.cfg.ARM64BootFile, arch: arch}, true
	case iana.EFI_ARM64_HTTP:
		return bootInfo{file: s.cfg.HTTPBootURL + "/" + s.cfg.ARM64BootFile, http: true, arch: arch}, true
	}
	if arch < 0 && pxe {
		// A PXE ROM that does not say its architecture: legacy BIOS.
		return bootInfo{file: s.cfg.BIOSBootFile, arch: arch}, true
	}
	return bootInfo{}, false
}

// addBoot puts b into reply: siaddr and option 66 name the TFTP server,
// option 67 and the file field the boot file; a UEFI HTTP client also gets
// option 60 "HTTPClient". In proxy mode option 60 "PXEClient" and option 43
// (PXE discovery control: boot the file at once) mark a proxyDHCP reply.
func (s *Server) addBoot(req, reply *dhcpv4.DHCPv4, b bootInfo) {
	reply.ServerIPAddr = s.cfg.TFTPServer
	reply.UpdateOption(dhcpv4.OptTFTPServerName(s.cfg.TFTPServer.String()))
	reply.UpdateOption(dhcpv4.OptBootFileName(b.file))
	if len(b.file) <= 127 {
		reply.BootFileName = b.file
	}
	switch {
	case b.http:
		reply.UpdateOption(dhcpv4.OptClassIdentifier(vendorHTTP))
	case s.cfg.Mode == ModeProxy:
		reply.UpdateOption(dhcpv4.OptClassIdentifier(vendorPXE))
		reply.UpdateOption(dhcpv4.OptGeneric(optVendorSpecific, []byte{pxeDiscoveryCtl, 1, 0x08, 0xff}))
	}
	if id := req.Options.Get(optClientMachineID); id != nil {
		reply.UpdateOption(dhcpv4.OptGeneric(optClientMachineID, id))
	}
}

// addCommon puts the options every OFFER and ACK carries: server
// identifier and iPXE's no-pxedhcp (175.176 = 1), which saves iPXE about
// three seconds of waiting for proxyDHCP offers.
func (s *Server) addCommon(reply *dhcpv4.DHCPv4) {
	reply.UpdateOption(dhcpv4.OptServerIdentifier(s.cfg.ServerIP))
	reply.UpdateOption(dhcpv4.OptGeneric(optIPXEEncap, []byte{ipxeNoPXEDHCP, 1, 1}))
}

// wantsBoot reports whether c is to be given a boot file: a known port of a
// node meant to net-boot now, or an unknown MAC when discovery is on.
func (s *Server) wantsBoot(c Client) bool {
	if c.Known {
		return c.NetBoot
	}
	return s.cfg.Discovery
}

// served reports whether c is answered at all: known MACs (in full mode
// even when not net-booting) and unknown ones when discovery is on.
func (s *Server) served(c Client) bool { return c.Known || s.cfg.Discovery }
