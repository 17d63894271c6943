package dhcp

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Mode says how the server takes part in DHCP on its network.
type Mode string

// Modes.
const (
	// ModeOff runs no DHCP server: Serve returns nil at once.
	ModeOff Mode = "off"
	// ModeFull hands out addresses and boot information.
	ModeFull Mode = "full"
	// ModeProxy adds boot information beside a site DHCP server
	// (proxyDHCP); it never hands out addresses and never NAKs.
	ModeProxy Mode = "proxy"
)

// Defaults.
const (
	DefaultLeaseTime    = time.Hour
	DefaultOfferHold    = 30 * time.Second
	DefaultDeclineHold  = 10 * time.Minute
	DefaultBIOSBootFile = "undionly.kpxe"
	DefaultEFIBootFile  = "snponly.efi"
	DefaultHTTPBootFile = "ipxe.efi"
	// DefaultARM64BootFile is the arm64 UEFI network boot loader (GRUB, built by
	// scripts/grub-arm64.sh) for ARM64 UEFI PXE (arch 11) and HTTP (arch 19) clients.
	DefaultARM64BootFile = "grubnetaa64.efi"
	DefaultWorkers       = 4
)

// Config configures a Server. Zero values take the defaults above; ServerIP
// and Netmask default to the interface's first IPv4 address and its mask.
type Config struct {
	Mode      Mode
	Interface string
	// ServerIP is the server identifier (option 54) and source of replies.
	ServerIP net.IP
	// TFTPServer is siaddr/next-server and option 66; default ServerIP.
	TFTPServer net.IP

	// Full mode: the dynamic range FIRST..LAST (inclusive) and what a
	// lease carries.
	RangeStart, RangeEnd net.IP
	Netmask              net.IPMask
	Router               net.IP   // optional
	DNS                  []net.IP // optional
	MTU                  int      // option 26; 0 sends none
	LeaseTime            time.Duration
	// OfferHold is how long an offered address stays reserved for the
	// MAC it was offered to before it is committed by a REQUEST.
	OfferHold time.Duration
	// DeclineHold is how long an address a client DECLINEd is not used.
	DeclineHold time.Duration

	// HTTPBootURL is the base URL of the HTTP boot server, e.g.
	// "http://10.0.0.1:8080"; UEFI HTTP clients get HTTPBootURL + "/" +
	// HTTPBootFile and iPXE clients get ScriptURL.
	HTTPBootURL  string
	BIOSBootFile string // arch 0; default undionly.kpxe
	EFIBootFile  string // arch 7 and 9; default snponly.efi (ipxe.efi also works)
	HTTPBootFile string // arch 16; default ipxe.efi
	// ARM64BootFile is what ARM64 UEFI clients load: over TFTP for arch 11 (PXE), as
	// HTTPBootURL + "/" + ARM64BootFile for arch 19 (HTTP); default grubnetaa64.efi.
	ARM64BootFile string
	// ScriptURL returns the iPXE script URL of a client that runs iPXE.
	// Default: HTTPBootURL + "/boot/" + mac + ".ipxe" for a known MAC and
	// HTTPBootURL + "/boot/unknown.ipxe" for discovery.
	ScriptURL func(mac net.HardwareAddr, c Client) string

	// Discovery serves unknown MACs as for discovery (address in full
	// mode, boot file and the discovery script) instead of ignoring them.
	Discovery bool
	// Relayed answers relayed requests (giaddr set) whose giaddr lies in
	// the attached subnet, replying to the relay. Off by default: only
	// clients on the interface are answered. perfdhcp needs it.
	Relayed bool
	// Subnets are the networks behind DHCP relays (racks on their own
	// subnets): a relayed request whose giaddr lies in one is served from
	// it and answered through the relay. Requests relayed from any other
	// subnet are dropped.
	Subnets []Subnet
	// Workers bounds the packets handled at once; default 4.
	Workers int
	// OnRequest, when set, is called once per request read from the network and decoded,
	// with its message type ("DISCOVER", "REQUEST", ...) and whether a reply was sent. It runs
	// on the worker that handled it: it must be safe for concurrent use and quick.
	OnRequest func(msgType string, answered bool)
}

// Validate reports what is wrong with c before any default is applied.
func (c Config) Validate() error {
	var errs []error
	switch c.Mode {
	case ModeOff:
		return nil
	case ModeFull, ModeProxy:
	default:
		return fmt.Errorf("dhcp mode %q: want %q, %q or %q", c.Mode, ModeFull, ModeProxy, ModeOff)
	}
	if c.Interface == "" {
		errs = append(errs, errors.New("interface is required"))
	}
	for name, ip := range map[string]net.IP{"server IP": c.ServerIP, "TFTP server": c.TFTPServer, "router": c.Router} {
		if ip != nil && ip.To4() == nil {
			errs = append(errs, fmt.Errorf("%s %v is not IPv4", name, ip))
		}
	}
	for _, ip := range c.DNS {
		if ip.To4() == nil {
			errs = append(errs, fmt.Errorf("DNS server %v is not IPv4", ip))
		}
	}
	if c.Netmask != nil && (len(c.Netmask) != net.IPv4len || !contiguous(c.Netmask)) {
		errs = append(errs, fmt.Errorf("netmask %v is not an IPv4 netmask", c.Netmask))
	}
	if c.Mode == ModeFull {
		s, e := c.RangeStart.To4(), c.RangeEnd.To4()
		switch {
		case s == nil || e == nil:
			errs = append(errs, fmt.Errorf("range %v..%v: both ends must be IPv4", c.RangeStart, c.RangeEnd))
		case ipToU32(s) > ipToU32(e):
			errs = append(errs, fmt.Errorf("range %v..%v: start is after end", s, e))
		}
	}
	if c.MTU != 0 && (c.MTU < 68 || c.MTU > 65535) {
		errs = append(errs, fmt.Errorf("MTU %d is outside 68..65535", c.MTU))
	}
	errs = append(errs, validateSubnets(c.Mode, c.Subnets, c.RangeStart, c.RangeEnd)...)
	if c.LeaseTime < 0 || c.OfferHold < 0 || c.DeclineHold < 0 {
		errs = append(errs, errors.New("lease time, offer hold and decline hold must not be negative"))
	}
	if c.HTTPBootURL == "" {
		errs = append(errs, errors.New("HTTP boot URL is required"))
	} else if u, err := url.Parse(c.HTTPBootURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("HTTP boot URL %q: want http(s)://host[:port][/path]", c.HTTPBootURL))
	}
	for name, f := range map[string]string{"BIOS": c.BIOSBootFile, "EFI": c.EFIBootFile, "HTTP": c.HTTPBootFile, "ARM64": c.ARM64BootFile} {
		if len(f) > 127 || strings.ContainsAny(f, "\x00") {
			errs = append(errs, fmt.Errorf("%s boot file %q: at most 127 bytes, no NUL", name, f))
		}
	}
	if c.Workers < 0 {
		errs = append(errs, errors.New("workers must not be negative"))
	}
	return errors.Join(errs...)
}

// withDefaults returns c with zero values replaced by defaults; ServerIP
// and Netmask are resolved from the interface in New.
func (c Config) withDefaults() Config {
	if c.LeaseTime == 0 {
		c.LeaseTime = DefaultLeaseTime
	}
	if c.OfferHold == 0 {
		c.OfferHold = DefaultOfferHold
	}
	if c.DeclineHold == 0 {
		c.DeclineHold = DefaultDeclineHold
	}
	if c.BIOSBootFile == "" {
		c.BIOSBootFile = DefaultBIOSBootFile
	}
	if c.EFIBootFile == "" {
		c.EFIBootFile = DefaultEFIBootFile
	}
	if c.HTTPBootFile == "" {
		c.HTTPBootFile = DefaultHTTPBootFile
	}
	if c.ARM64BootFile == "" {
		c.ARM64BootFile = DefaultARM64BootFile
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	c.HTTPBootURL = strings.TrimRight(c.HTTPBootURL, "/")
	if c.ScriptURL == nil {
		c.ScriptURL = scriptURLs(c.HTTPBootURL)
	}
	return c
}

// scriptURLs is the default ScriptURL: the HTTP boot server's per-MAC iPXE script, or its
// script for unknown machines.
func scriptURLs(base string) func(net.HardwareAddr, Client) string {
	return func(mac net.HardwareAddr, cl Client) string {
		if !cl.Known || mac == nil {
			return base + "/boot/unknown.ipxe"
		}
		return base + "/boot/" + mac.String() + ".ipxe"
	}
}

func contiguous(m net.IPMask) bool {
	ones, bits := m.Size()
	return bits != 0 || ones != 0
}
