package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/dhcp"
	"github.com/ironwork/ironwork/internal/driver/pxe"
	"github.com/ironwork/ironwork/internal/driver/redfish"
	"github.com/ironwork/ironwork/internal/httpapi"
	"github.com/ironwork/ironwork/internal/httpboot"
	"github.com/ironwork/ironwork/internal/image"
	"github.com/ironwork/ironwork/internal/netns"
	"github.com/ironwork/ironwork/internal/sqlstore"
	"github.com/ironwork/ironwork/internal/tftp"
)

// bootServices are the network boot services of a conductor: DHCP (or proxyDHCP) and
// router advertisements on the provisioning interface, TFTP and the HTTP boot server.
type bootServices struct {
	cfg      Config
	log      *slog.Logger
	addr     net.IP // the provisioning interface's IPv4 address (IPv6 on an IPv6-only network)
	resolver *pxe.Resolver
	httpSrv  *httpboot.Server
	httpLn   net.Listener
	httpLn6  net.Listener // dual-stack networks with DHCPv6: the HTTP boot server's IPv6 address
	tftpSrv  *tftp.Server
	tftpConn net.PacketConn
	dhcpSrv  *dhcp.Server
	dhcp6    *dhcp.Server6
	ra       *dhcp.RouterAdvertiser
	cache    *image.Cache
	httpURL  string // the HTTP boot server's URL as nodes reach it
}

// bootRoot and imageDir are where boot files and the image cache live in the data dir.
func bootRoot(cfg Config) string { return filepath.Join(cfg.DataDir, "boot") }
func imageDir(cfg Config) string { return filepath.Join(cfg.DataDir, "images") }

// interfaceIPv4 is the first IPv4 address of an interface, looked up in its namespace.
func interfaceIPv4(ns, name string) (net.IP, error) {
	return interfaceAddr(ns, name, "IPv4 address", func(ip net.IP) bool { return ip.To4() != nil })
}

// interfaceAddr is the first address of an interface that want accepts (IPv4 ones as 4
// bytes), looked up in its namespace; what says what was wanted, for the error.
func interfaceAddr(ns, name, what string, want func(net.IP) bool) (net.IP, error) {
	var ip net.IP
	err := netns.Do(ns, func() error {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return err
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && want(n.IP) {
				ip = n.IP
				if v4 := n.IP.To4(); v4 != nil {
					ip = v4
				}
				return nil
			}
		}
		return fmt.Errorf("interface %s has no %s", name, what)
	})
	if err != nil {
		where := ""
		if ns != "" {
			where = " in network namespace " + ns
		}
		return nil, fmt.Errorf("provisioning interface %s%s: %w", name, where, err)
	}
	return ip, nil
}

// onAddr puts ip in a listen address whose host is empty (":8080").
func onAddr(listen string, ip net.IP) string {
	host, port, _ := net.SplitHostPort(listen)
	if host == "" && ip != nil {
		host = ip.String()
	}
	return net.JoinHostPort(host, port)
}

// reachAddr is the address nodes use for a listen address: a wildcard host ("", 0.0.0.0)
// becomes the provisioning interface's address.
func reachAddr(listen string, ip net.IP) string {
	host, port, _ := net.SplitHostPort(listen)
	if h := net.ParseIP(host); host == "" || (h != nil && h.IsUnspecified()) {
		host = ip.String()
	}
	return net.JoinHostPort(host, port)
}

// bootConfig works out the boot interfaces' settings; addr is nil when no provisioning
// interface is set, and then the network boot interfaces fail validation with the reason.
func bootConfig(cfg Config, addr net.IP) pxe.Config {
	c := pxe.Config{Root: bootRoot(cfg), HTTPURL: cfg.HTTPBootURL, APIURL: cfg.AgentAPIURL,
		KernelParams: cfg.KernelAppendParams, DefaultBootMode: cfg.DefaultBootMode, FileDirs: fileDirs(cfg),
		DeployKernelByArch: pxe.NormalizeArchKeys(cfg.DeployKernelByArch), DeployRamdiskByArch: pxe.NormalizeArchKeys(cfg.DeployRamdiskByArch)}
	if addr == nil {
		return c
	}
	if c.HTTPURL == "" {
		c.HTTPURL = "http://" + reachAddr(cfg.HTTPBootListen, addr)
	}
	if c.APIURL == "" {
		_, port, _ := net.SplitHostPort(cfg.Listen)
		c.APIURL = "http://" + net.JoinHostPort(addr.String(), port)
	}
	c.TFTPServer = addr.String()
	if host, port, _ := net.SplitHostPort(reachAddr(cfg.TFTPListen, addr)); port != "69" {
		c.TFTPServer = net.JoinHostPort(host, port)
	}
	return c
}

// fileDirs are the directories local boot files and images may come from.
func fileDirs(cfg Config) []string {
	if len(cfg.FileURLAllowedPaths) > 0 {
		return cfg.FileURLAllowedPaths
	}
	return []string{filepath.Join(cfg.DataDir, "ramdisk"), "/var/cache/ironwork"}
}

// imageLinker adapts the image cache to the boot interfaces.
type imageLinker struct{ cache *image.Cache }

func (l imageLinker) Link(ctx context.Context, url, checksum, dest string) error {
	return l.cache.Link(ctx, image.Source{URL: url, Checksum: checksum}, dest)
}

// notConfigured is the boot interface when no provisioning interface is set: it says so.
type notConfigured struct{}

func (notConfigured) err() error {
	return errors.New("network boot is not configured on this conductor: set provisioning_interface (--provisioning-interface)")
}
func (n notConfigured) Validate(context.Context, *conductor.Task) error        { return n.err() }
func (n notConfigured) PrepareRamdisk(context.Context, *conductor.Task) error  { return n.err() }
func (n notConfigured) CleanUpRamdisk(context.Context, *conductor.Task) error  { return nil }
func (n notConfigured) PrepareInstance(context.Context, *conductor.Task) error { return n.err() }
func (n notConfigured) CleanUpInstance(context.Context, *conductor.Task) error { return nil }

// bootMetrics counts what the boot services and the image cache do; the services themselves
// know only their hooks (functions in their configs).
type bootMetrics interface {
	DHCPRequest(msgType string, answered bool)
	TFTPTransfer(ok bool, bytes int64)
	HTTPBootRequest(status int)
	ImageLookup(hit bool)
	ImageDownloaded(bytes int64)
}

// registerBoot adds the network boot interfaces to registry and returns the boot services
// to run (nil when no provisioning interface is set).
func registerBoot(ctx context.Context, cfg Config, store *sqlstore.Store, registry conductor.Registry, m bootMetrics, log *slog.Logger) (bs *bootServices, err error) {
	if cfg.ProvisioningInterface == "" {
		for _, name := range []string{pxe.IPXE, pxe.PXE, pxe.HTTP, redfish.VirtualMediaName, redfish.HTTPSName} {
			registry.Add(ironwork.BootInterface, name, notConfigured{})
		}
		return nil, nil
	}
	addr, err := provisioningAddr(cfg)
	if err != nil {
		return nil, err
	}
	log = log.With("service", "boot")
	cache, err := image.New(image.Config{Dir: imageDir(cfg), MaxSize: cfg.ImageCacheSize << 20, MaxAge: cfg.ImageCacheTTL.Duration,
		AllowUnverified: true, OnLookup: m.ImageLookup, OnDownloaded: m.ImageDownloaded}, log)
	if err != nil {
		return nil, fmt.Errorf("image cache: %w", err)
	}
	pcfg := bootConfig(cfg, addr)
	pcfg.Discovery = cfg.Discovery.Enabled && cfg.Discovery.DeployKernel != ""
	for _, name := range []string{pxe.IPXE, pxe.PXE, pxe.HTTP} {
		b, err := pxe.New(name, pcfg, imageLinker{cache}, log)
		if err != nil {
			return nil, err
		}
		registry.Add(ironwork.BootInterface, name, b)
	}
	// Virtual media: the BMC downloads the node's boot ISO from the HTTP boot server.
	// UEFI HTTP boot (redfish-https): the firmware downloads the same ISO itself.
	vcfg := redfish.VirtualMediaConfig{Root: pcfg.Root, HTTPURL: pcfg.HTTPURL, APIURL: pcfg.APIURL,
		KernelParams: pcfg.KernelParams, DefaultBootMode: pcfg.DefaultBootMode, FileDirs: pcfg.FileDirs,
		LoaderDir: filepath.Join(cfg.DataDir, "vmedia-loaders")}
	vm, err := redfish.NewVirtualMediaBoot(vcfg, imageLinker{cache}, log)
	if err != nil {
		return nil, err
	}
	registry.Add(ironwork.BootInterface, redfish.VirtualMediaName, vm)
	hb, err := redfish.NewHTTPSBoot(vcfg, imageLinker{cache}, log)
	if err != nil {
		return nil, err
	}
	registry.Add(ironwork.BootInterface, redfish.HTTPSName, hb)
	bs = &bootServices{cfg: cfg, log: log, addr: addr, resolver: &pxe.Resolver{Nodes: store, Cfg: pcfg}, cache: cache, httpURL: pcfg.HTTPURL}
	defer func() {
		if err != nil {
			bs.close() // what opened before the failure
			bs = nil
		}
	}()
	if err := bs.installIPXE(); err != nil {
		return nil, err
	}
	if pcfg.Discovery {
		if err := bs.installDiscovery(ctx, pcfg); err != nil {
			return nil, err
		}
	}
	if bs.httpSrv, err = httpboot.New(pcfg.Root, bs.resolver, log); err != nil {
		return nil, err
	}
	bs.httpSrv.OnRequest = m.HTTPBootRequest
	if bs.httpLn, err = netns.Listen(ctx, cfg.ProvisioningNetns, "tcp", onAddr(cfg.HTTPBootListen, addr)); err != nil {
		return nil, fmt.Errorf("HTTP boot server: %w", err)
	}
	ns := cfg.ProvisioningNetns
	tcfg := tftp.Config{OnTransfer: func(info tftp.TransferInfo) { m.TFTPTransfer(info.Err == nil, info.Bytes) }, Dial: func(laddr, raddr *net.UDPAddr) (c *net.UDPConn, err error) {
		err = netns.Do(ns, func() error {
			c, err = net.DialUDP("udp", laddr, raddr)
			return err
		})
		return c, err
	}}
	if bs.tftpSrv, err = tftp.NewDir(pcfg.Root, tcfg, log); err != nil {
		return nil, fmt.Errorf("TFTP server: %w", err)
	}
	udp := "udp4"
	if addr.To4() == nil {
		udp = "udp6"
	}
	if bs.tftpConn, err = netns.ListenPacket(ctx, ns, udp, onAddr(cfg.TFTPListen, addr)); err != nil {
		return nil, fmt.Errorf("TFTP server: %w", err)
	}
	if addr.To4() == nil && cfg.DHCPMode != "off" {
		log.Info("IPv6-only provisioning network: no DHCPv4", "interface", cfg.ProvisioningInterface)
	}
	if addr.To4() != nil && (cfg.DHCPMode == "full" || cfg.DHCPMode == "proxy") {
		dcfg := dhcp.Config{Mode: dhcp.Mode(cfg.DHCPMode), Interface: cfg.ProvisioningInterface, ServerIP: addr,
			HTTPBootURL: pcfg.HTTPURL, EFIBootFile: cfg.EFIBootFile, ARM64BootFile: pxe.GrubLoaderName, LeaseTime: cfg.DHCPLeaseTime.Duration,
			Discovery: pcfg.Discovery, OnRequest: m.DHCPRequest}
		dcfg.Subnets, _ = cfg.dhcpSubnets() // checked by Validate
		if cfg.DHCPMode == "full" {
			dcfg.MTU = cfg.DHCPMTU
			dcfg.RangeStart, dcfg.RangeEnd, _ = ParseRange(cfg.DHCPRange)
			dcfg.Router = net.ParseIP(cfg.DHCPRouter).To4()
			if d := net.ParseIP(cfg.DHCPDNS).To4(); d != nil {
				dcfg.DNS = []net.IP{d}
			}
		}
		if err = netns.Do(ns, func() error {
			var err error
			bs.dhcpSrv, err = dhcp.New(dcfg, dhcpNodes{bs.resolver}, storeLeases{store}, log)
			return err
		}); err != nil {
			return nil, fmt.Errorf("DHCP server: %w", err)
		}
	}
	// Router advertisements (with an autonomous prefix when the interface has one) only on a
	// provisioning network this server owns: in proxy mode the network is the site's.
	if cfg.DHCPMode == "full" {
		if bs.ra, err = dhcp.NewRouterAdvertiser(dhcp.RAConfig{Interface: cfg.ProvisioningInterface}, log); err != nil {
			return nil, err
		}
	}
	// DHCPv6 (and router advertisements whose flags say its mode) on the IPv6 subnet.
	if cfg.DHCP6.enabled() {
		if err := bs.startDHCP6(ctx, cfg, dhcpNodes{bs.resolver}, storeLeases6{store}, pcfg.HTTPURL, pcfg.Discovery, m, log); err != nil {
			return nil, err
		}
	}
	return bs, nil
}

// installDiscovery links the discovery kernel and ramdisk into the boot root, where the
// discovery script of unknown machines loads them.
func (b *bootServices) installDiscovery(ctx context.Context, pcfg pxe.Config) error {
	dir := filepath.Join(pcfg.Root, pxe.DiscoveryDir)
	for _, f := range [][2]string{{b.cfg.Discovery.DeployKernel, "kernel"}, {b.cfg.Discovery.DeployRamdisk, "ramdisk"}} {
		src := f[0]
		if strings.HasPrefix(src, "/") {
			src = "file://" + src
		}
		if err := b.cache.Link(ctx, image.Source{URL: src}, filepath.Join(dir, f[1])); err != nil {
			return fmt.Errorf("discovery %s: %w", f[1], err)
		}
	}
	return nil
}

// installIPXE puts the iPXE binaries and the chain script into the boot root.
func (b *bootServices) installIPXE() error {
	root := bootRoot(b.cfg)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("create boot root: %w", err)
	}
	var missing []string
	for _, name := range []string{"undionly.kpxe", "ipxe.efi", "snponly.efi"} {
		if err := copyFile(filepath.Join(b.cfg.IPXEDir, name), filepath.Join(root, name)); err != nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		b.log.Warn("iPXE binaries missing: firmware that needs them cannot network-boot (Debian package ipxe)",
			"dir", b.cfg.IPXEDir, "missing", strings.Join(missing, ", "))
	}
	if err := os.WriteFile(filepath.Join(root, "boot.ipxe"), []byte(b.resolver.ChainScript()), 0o644); err != nil {
		return fmt.Errorf("write boot.ipxe: %w", err)
	}
	return b.installGrub(root)
}

// installGrub puts the arm64 GRUB loader and the menu it reads (pxe.GrubMenu) into the boot
// root: ARM64 UEFI clients boot through them.
func (b *bootServices) installGrub(root string) error {
	if err := copyFile(b.cfg.ARM64BootLoader, filepath.Join(root, pxe.GrubLoaderName)); err != nil {
		b.log.Warn("arm64 boot loader missing: ARM64 UEFI machines cannot network-boot (scripts/grub-arm64.sh builds it)",
			"arm64_boot_loader", b.cfg.ARM64BootLoader, "error", err)
	}
	menu, err := b.resolver.GrubMenu()
	if err != nil {
		return err
	}
	dst := filepath.Join(root, pxe.GrubMenuPath)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("create GRUB directory: %w", err)
	}
	if err := os.WriteFile(dst, []byte(menu), 0o644); err != nil {
		return fmt.Errorf("write GRUB menu: %w", err)
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// serve runs every boot service until ctx ends. A service that stops early is logged at
// once: nodes cannot boot without it, and the operator must hear of it before they try.
func (b *bootServices) serve(ctx context.Context) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	ns := b.cfg.ProvisioningNetns
	run := func(name string, fatal bool, fn func() error) {
		wg.Go(func() {
			err := fn()
			if err == nil || ctx.Err() != nil {
				return
			}
			if !fatal {
				b.log.Warn(name+" stopped", "error", err)
				return
			}
			b.log.Error(name+" stopped: nodes cannot network-boot", "error", err)
			mu.Lock()
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			mu.Unlock()
		})
	}
	run("HTTP boot server", true, func() error { return b.httpSrv.Serve(ctx, b.httpLn) })
	run("TFTP server", true, func() error { return b.tftpSrv.Serve(ctx, b.tftpConn) })
	if b.dhcpSrv != nil {
		run("DHCP server", true, func() error { return netns.Do(ns, func() error { return b.dhcpSrv.Serve(ctx) }) })
	}
	b.serveDHCP6(ctx, run)
	// The image cache expires masters by age and size, as Ironic's does, every hour.
	wg.Go(func() {
		tick := time.NewTicker(time.Hour)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if n, freed, err := b.cache.Clean(ctx); err != nil {
					b.log.Warn("clean image cache", "error", err)
				} else if n > 0 {
					b.log.Info("image cache cleaned", "removed", n, "bytes", freed)
				}
			}
		}
	})
	// Router advertisements only spare iPXE its IPv6 wait: without them nodes boot slower.
	if b.ra != nil {
		run("router advertisements (iPXE will wait for IPv6 on each boot)", false,
			func() error { return netns.Do(ns, func() error { return b.ra.Serve(ctx) }) })
	}
	b.log.Info("boot services running", "interface", b.cfg.ProvisioningInterface, "address", b.addr.String(),
		"dhcp", b.dhcpMode(), "dhcp6", b.cfg.DHCP6.Mode, "http", b.httpLn.Addr().String(), "tftp", b.tftpConn.LocalAddr().String())
	wg.Wait()
	b.httpSrv.Close()
	return errors.Join(errs...)
}

// dhcpNodes answers the DHCP server's questions from the ports and nodes.
type dhcpNodes struct{ r *pxe.Resolver }

func (d dhcpNodes) Lookup(ctx context.Context, mac net.HardwareAddr) (dhcp.Client, error) {
	t, err := d.r.Lookup(ctx, mac.String())
	if err != nil {
		return dhcp.Client{}, err
	}
	c := dhcp.Client{Known: t.Known, NetBoot: t.NetBoot, Node: t.Node, TenantVIF: t.TenantVIF}
	if ip := net.ParseIP(t.StaticIP); ip != nil {
		c.StaticIP = ip // IPv4 for DHCPv4, an IPv6 address for DHCPv6; each ignores the other
		if ip4 := ip.To4(); ip4 != nil {
			c.StaticIP = ip4
		}
	}
	return c, nil
}

// storeLeases keeps DHCP leases in the database.
type storeLeases struct{ s *sqlstore.Store }

// DHCPLeases returns the DHCP server's lease store kept in s, as ironwork serve uses it (for
// bench/dhcpserve, which measures the DHCP server with its leases in SQL).
func DHCPLeases(s *sqlstore.Store) dhcp.Leases { return storeLeases{s} }

func toLease(l sqlstore.DHCPLease) dhcp.Lease {
	mac, _ := net.ParseMAC(l.MAC)
	return dhcp.Lease{MAC: mac, Subnet: l.Subnet, IP: net.ParseIP(l.IP).To4(), Expires: l.Expires, Hostname: l.Hostname}
}

func (s storeLeases) Lease(ctx context.Context, subnet string, mac net.HardwareAddr) (dhcp.Lease, bool, error) {
	l, ok, err := s.s.Lease(ctx, subnet, mac.String())
	return toLease(l), ok, err
}

func (s storeLeases) ByIP(ctx context.Context, ip net.IP) (dhcp.Lease, bool, error) {
	l, ok, err := s.s.LeaseByIP(ctx, ip.String())
	return toLease(l), ok, err
}

func (s storeLeases) PutLease(ctx context.Context, l dhcp.Lease) error {
	err := s.s.PutLease(ctx, sqlstore.DHCPLease{MAC: l.MAC.String(), Subnet: l.Subnet, IP: l.IP.String(), Hostname: l.Hostname, Expires: l.Expires})
	if errors.Is(err, sqlstore.ErrAddressInUse) {
		return fmt.Errorf("%w: %w", dhcp.ErrAddressInUse, err)
	}
	return err
}

func (s storeLeases) DeleteLease(ctx context.Context, subnet string, mac net.HardwareAddr) error {
	return s.s.DeleteLease(ctx, subnet, mac.String())
}

func (s storeLeases) Leases(ctx context.Context) ([]dhcp.Lease, error) {
	ls, err := s.s.Leases(ctx)
	out := make([]dhcp.Lease, len(ls))
	for i, l := range ls {
		out[i] = toLease(l)
	}
	return out, err
}

// close releases the sockets of services that never ran.
func (b *bootServices) close() {
	if b.httpSrv != nil {
		b.httpSrv.Close()
	}
	if b.httpLn != nil {
		b.httpLn.Close()
	}
	if b.httpLn6 != nil {
		b.httpLn6.Close()
	}
	if b.tftpConn != nil {
		b.tftpConn.Close()
	}
}

// listenForAgents serves the agent's endpoints (lookup, heartbeat, version discovery) on the
// provisioning address at the API's port, when the boot services run here, no agent API URL
// is configured, and the API itself does not listen where agents reach it (the default:
// loopback). Nothing else of the API is served there.
func (s *Server) listenForAgents(ctx context.Context, agent http.Handler) error {
	if s.boot == nil || s.cfg.AgentAPIURL != "" {
		return nil
	}
	host, port, _ := net.SplitHostPort(s.cfg.Listen)
	if ip := net.ParseIP(host); s.cfg.ProvisioningNetns == "" && (ip.Equal(s.boot.addr) || (ip != nil && ip.IsUnspecified()) || host == "") {
		return nil // the API already listens on the provisioning address
	}
	if port == "0" && s.ln != nil {
		_, port, _ = net.SplitHostPort(s.ln.Addr().String())
	}
	ln, err := netns.Listen(ctx, s.cfg.ProvisioningNetns, "tcp", net.JoinHostPort(s.boot.addr.String(), port))
	if err != nil {
		return fmt.Errorf("listen for deploy agents: %w (or set agent_api_url to an API address they reach)", err)
	}
	s.agentLn = httpapi.ErrorListener(ln)
	s.agentSrv = newHTTPServer(agent, s.log)
	s.log.Info("deploy agents reach the API on the provisioning network", "address", ln.Addr().String())
	return nil
}
