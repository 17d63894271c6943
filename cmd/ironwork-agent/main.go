// Command ironwork-agent is Ironwork's deploy agent: a static binary that runs as /init of the
// deploy ramdisk on a bare-metal node, in the role ironic-python-agent plays for Ironic. As
// PID 1 it mounts the kernel filesystems, loads the ramdisk's kernel modules, configures the
// NICs with DHCP; then, when asked to, it inspects the machine and posts its inventory; it
// looks its node up in the Ironic API, serves IPA's command API on
// port 9999 and heartbeats until the conductor powers the node off.
//
// Settings come from the kernel command line (IPA's parameter names: ipa-api-url, BOOTIF,
// ipa-lookup-timeout, ipa-insecure, ipa-debug, ipa-listen-port, ipa-advertise-host,
// ipa-agent-token, ipa-inspection-callback-url, ipa-collect-lldp, ipa-lldp-timeout,
// ipa-enable-auto-tls, plus
// ironwork-node) and, for tests and running outside a ramdisk, flags,
// which win. See docs/agent.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ironwork/ironwork/internal/agent"
	"github.com/ironwork/ironwork/internal/agent/initsys"
	"github.com/ironwork/ironwork/internal/agent/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Config is the agent's settings.
type Config struct {
	APIURL        string        // Ironic API base URL (ipa-api-url)
	Listen        string        // command API listen address (ipa-listen-port)
	AdvertiseURL  string        // callback URL given to the conductor; "" = derived
	AdvertiseHost string        // ipa-advertise-host: host part of the derived callback URL
	RootDevice    string        // skip root device hints, use this device or file
	SysRoot       string        // where /sys, /dev, /proc are (ListDisks, inventory)
	CmdlineFile   string        // kernel command line to read settings from
	LookupTimeout time.Duration // ipa-lookup-timeout
	NoPowerOff    bool          // standby.power_off exits the process instead
	NodeUUID      string        // ironwork-node: narrows the lookup
	BootMAC       string        // from BOOTIF
	Insecure      bool          // ipa-insecure: do not verify the API's TLS certificate
	Debug         bool          // ipa-debug
	AgentToken    string        // ipa-agent-token: a token known before lookup
	FatalDelay    time.Duration // PID 1: how long a fatal error stays on screen before reboot
	// InspectionURL (ipa-inspection-callback-url): inspect first, posting the inventory there.
	InspectionURL string
	CollectLLDP   bool          // ipa-collect-lldp: listen for LLDP while inspecting (default on)
	LLDPTimeout   time.Duration // ipa-lldp-timeout: how long to listen on all NICs at once
	RescueRoot    string        // where rescue.finalize_rescue writes etc/passwd and etc/shadow ("/" as PID 1)
	EFIVars       string        // efivarfs for UEFI boot entries (PID 1: agent.SystemEFIVars; otherwise none)
	SoftwareRAID  bool          // drive the kernel's md arrays (PID 1 only: raid steps, a mirror as root device)
	// AutoTLS (ipa-enable-auto-tls, default on): serve the command API over TLS with a
	// certificate made at start and sent in heartbeats, when the API supports it (1.68).
	AutoTLS bool
}

// DefaultConfig returns the defaults (IPA's port 9999, five minutes of lookup).
func DefaultConfig() Config {
	return Config{
		Listen:        "0.0.0.0:9999",
		SysRoot:       "/",
		CmdlineFile:   "/proc/cmdline",
		LookupTimeout: 300 * time.Second,
		FatalDelay:    60 * time.Second,
		CollectLLDP:   true,
		LLDPTimeout:   5 * time.Second,
		AutoTLS:       true,
	}
}

// Validate checks the settings.
func (c Config) Validate() error {
	if c.APIURL == "" && c.InspectionURL == "" {
		return errors.New("no Ironic API URL: give ipa-api-url= on the kernel command line or --api-url")
	}
	if c.APIURL != "" {
		u, err := url.Parse(c.APIURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("API URL %q must be http(s)://host[:port]", c.APIURL)
		}
	}
	if c.InspectionURL != "" {
		u, err := url.Parse(c.InspectionURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("inspection callback URL %q must be http(s)://host[:port]/path", c.InspectionURL)
		}
	}
	if c.LLDPTimeout <= 0 {
		return errors.New("LLDP timeout must be positive")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen address %q: %w", c.Listen, err)
	}
	if c.AdvertiseURL != "" {
		if u, err := url.Parse(c.AdvertiseURL); err != nil || u.Host == "" {
			return fmt.Errorf("advertise URL %q must be http(s)://host:port", c.AdvertiseURL)
		}
	}
	if c.LookupTimeout <= 0 {
		return errors.New("lookup timeout must be positive")
	}
	return nil
}

// applyCmdline sets what the kernel command line says.
func (c *Config) applyCmdline(params map[string]string) error {
	if v, ok := params["ipa-api-url"]; ok {
		// IPA accepts a comma-separated list; the first URL is used.
		c.APIURL, _, _ = strings.Cut(v, ",")
	}
	if v, ok := params["ipa-listen-port"]; ok {
		if _, err := strconv.ParseUint(v, 10, 16); err != nil {
			return fmt.Errorf("ipa-listen-port=%q: not a port", v)
		}
		host, _, _ := net.SplitHostPort(c.Listen)
		c.Listen = net.JoinHostPort(host, v)
	}
	if v, ok := params["ipa-listen-host"]; ok && v != "" {
		_, port, _ := net.SplitHostPort(c.Listen)
		c.Listen = net.JoinHostPort(v, port)
	}
	if v, ok := params["ipa-advertise-host"]; ok {
		c.AdvertiseHost = v
	}
	if v, ok := params["ipa-lookup-timeout"]; ok {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("ipa-lookup-timeout=%q: not a positive number of seconds", v)
		}
		c.LookupTimeout = time.Duration(n * float64(time.Second))
	}
	if v, ok := params["ipa-insecure"]; ok {
		c.Insecure = parseBoolish(v)
	}
	if v, ok := params["ipa-debug"]; ok {
		c.Debug = parseBoolish(v)
	}
	if v, ok := params["ipa-agent-token"]; ok {
		c.AgentToken = v
	}
	if v, ok := params["ironwork-node"]; ok {
		c.NodeUUID = v
	}
	if v, ok := params["ipa-inspection-callback-url"]; ok {
		c.InspectionURL = v
	}
	if v, ok := params["ipa-collect-lldp"]; ok {
		c.CollectLLDP = parseBoolish(v)
	}
	if v, ok := params["ipa-lldp-timeout"]; ok {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || n <= 0 || n > 600 {
			return fmt.Errorf("ipa-lldp-timeout=%q: not a number of seconds in (0, 600]", v)
		}
		c.LLDPTimeout = time.Duration(n * float64(time.Second))
	}
	if v, ok := params["ipa-enable-auto-tls"]; ok {
		c.AutoTLS = parseBoolish(v)
	}
	if v, ok := params["BOOTIF"]; ok {
		c.BootMAC = initsys.BootMAC(v)
	}
	return nil
}

// parseBoolish is oslo's bool_from_string: 1, true, yes, on, y, t (and a bare flag) are true.
func parseBoolish(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "1", "true", "yes", "on", "y", "t":
		return true
	}
	return false
}

// parseConfig builds the settings from defaults, the kernel command line, then flags.
func parseConfig(args []string, stderr io.Writer) (Config, error) {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("ironwork-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var fl Config
	fs.StringVar(&fl.APIURL, "api-url", "", "Ironic API URL (kernel: ipa-api-url)")
	fs.StringVar(&fl.Listen, "listen", cfg.Listen, "command API listen address (kernel: ipa-listen-port)")
	fs.StringVar(&fl.AdvertiseURL, "advertise-url", "", "callback URL for the conductor (default http://<IPv4 of the NIC that reaches the API>:<port>)")
	fs.StringVar(&fl.RootDevice, "root-device", "", "write images to this device or file, ignoring root device hints")
	fs.StringVar(&fl.SysRoot, "sysroot", cfg.SysRoot, "root of /sys, /dev and /proc for disks and inventory")
	fs.StringVar(&fl.CmdlineFile, "cmdline", cfg.CmdlineFile, "kernel command line file to read settings from")
	fs.DurationVar(&fl.LookupTimeout, "lookup-timeout", cfg.LookupTimeout, "give up the lookup after this long (kernel: ipa-lookup-timeout, seconds)")
	fs.BoolVar(&fl.NoPowerOff, "no-poweroff", false, "standby.power_off exits the process (status 0) instead of powering off")
	fs.StringVar(&fl.NodeUUID, "node", "", "node UUID for the lookup (kernel: ironwork-node)")
	fs.BoolVar(&fl.Debug, "debug", false, "debug logging (kernel: ipa-debug)")
	fs.StringVar(&fl.RescueRoot, "rescue-root", "", "directory whose etc/passwd and etc/shadow rescue.finalize_rescue writes (PID 1: /; otherwise the command fails without it)")
	fs.BoolVar(&fl.Insecure, "insecure", false, "do not verify the API's TLS certificate (kernel: ipa-insecure)")
	fs.StringVar(&fl.InspectionURL, "inspection-callback-url", "", "inspect first: post the inventory to this URL (kernel: ipa-inspection-callback-url)")
	fs.BoolVar(&fl.AutoTLS, "enable-auto-tls", cfg.AutoTLS, "serve the command API over TLS with a self-signed certificate sent in heartbeats, when the API supports it (kernel: ipa-enable-auto-tls)")
	fs.DurationVar(&fl.LLDPTimeout, "lldp-timeout", cfg.LLDPTimeout, "while inspecting, listen this long for LLDP (kernel: ipa-lldp-timeout, seconds)")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["cmdline"] {
		cfg.CmdlineFile = fl.CmdlineFile
	}
	if b, err := os.ReadFile(cfg.CmdlineFile); err == nil {
		if err := cfg.applyCmdline(initsys.ParseCmdline(string(b))); err != nil {
			return Config{}, fmt.Errorf("kernel command line %s: %w", cfg.CmdlineFile, err)
		}
	} else if set["cmdline"] {
		return Config{}, fmt.Errorf("read kernel command line: %w", err)
	}
	for name, apply := range map[string]func(){
		"api-url":                 func() { cfg.APIURL = fl.APIURL },
		"listen":                  func() { cfg.Listen = fl.Listen },
		"advertise-url":           func() { cfg.AdvertiseURL = fl.AdvertiseURL },
		"root-device":             func() { cfg.RootDevice = fl.RootDevice },
		"sysroot":                 func() { cfg.SysRoot = fl.SysRoot },
		"lookup-timeout":          func() { cfg.LookupTimeout = fl.LookupTimeout },
		"no-poweroff":             func() { cfg.NoPowerOff = fl.NoPowerOff },
		"node":                    func() { cfg.NodeUUID = fl.NodeUUID },
		"debug":                   func() { cfg.Debug = fl.Debug },
		"insecure":                func() { cfg.Insecure = fl.Insecure },
		"inspection-callback-url": func() { cfg.InspectionURL = fl.InspectionURL },
		"lldp-timeout":            func() { cfg.LLDPTimeout = fl.LLDPTimeout },
		"rescue-root":             func() { cfg.RescueRoot = fl.RescueRoot },
		"enable-auto-tls":         func() { cfg.AutoTLS = fl.AutoTLS },
	} {
		if set[name] {
			apply()
		}
	}
	return cfg, cfg.Validate()
}

func main() {
	if initsys.IsPID1() {
		runInit()
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], initsys.NewConsole(os.Stderr), os.Stderr)
	stop()
	os.Exit(code)
}

// runInit is the ramdisk's PID 1: it never returns normally and never exits.
func runInit() {
	// The kernel starts init without PATH; mkfs, mtools and the image's own grub-install
	// (chrooted) are found through it.
	if os.Getenv("PATH") == "" {
		os.Setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
	}
	mountErr := initsys.MountEarly()
	console := initsys.OpenConsole(true)
	console.Printf("ironwork-agent %s starting as init", version)
	if mountErr != nil {
		console.Printf("mount: %v", mountErr)
	}
	logs := server.NewLogBuffer(4 << 20)
	log := slog.New(slog.NewTextHandler(io.MultiWriter(console, logs), &slog.HandlerOptions{Level: slog.LevelInfo}))
	if rel, err := initsys.KernelRelease(); err == nil {
		rep, err := initsys.LoadModules(filepath.Join("/lib/modules", rel), log)
		if err != nil {
			console.Printf("modules: %v", err)
		} else {
			console.Printf("modules: %d loaded, %d already present, %d failed", len(rep.Loaded), len(rep.Present), len(rep.Failed))
		}
	}
	ctx := context.Background()
	static, err := initsys.StaticNetwork(ctx, log, initsys.DefaultNetworkConfig())
	switch {
	case err != nil:
		initsys.Fatal(console, err, DefaultConfig().FatalDelay)
	case static != nil:
		console.Printf("network: configured from network_data on %s: %s", static.Device, static.Summary)
	default:
		ncfg := initsys.DefaultNetworkConfig()
		if b, err := os.ReadFile(DefaultConfig().CmdlineFile); err == nil {
			ncfg.Need = initsys.APIFamily(initsys.ParseCmdline(string(b))["ipa-api-url"])
		}
		console.Printf("network: DHCP on all NICs (API needs %s)", ncfg.Need)
		leases, err := initsys.ConfigureNetwork(ctx, log, ncfg)
		if err != nil {
			initsys.Fatal(console, err, DefaultConfig().FatalDelay)
		}
		for _, l := range leases {
			console.Printf("network: %s (%s) %s %s router %v server %v", l.NIC, l.MAC, l.Source, l.Addr.String(), l.Router, l.Server)
		}
	}
	cfg, err := parseConfig(nil, console)
	if err != nil {
		initsys.Fatal(console, err, cfg.FatalDelay)
	}
	cfg.RescueRoot = "/"
	cfg.EFIVars = agent.SystemEFIVars
	cfg.SoftwareRAID = true
	level := slog.LevelInfo
	if cfg.Debug {
		level = slog.LevelDebug
	}
	log = slog.New(slog.NewTextHandler(io.MultiWriter(console, logs), &slog.HandlerOptions{Level: level}))
	err = runAgent(ctx, cfg, agentEnv{log: log, console: console, logs: logs, powerOff: func() error {
		console.Printf("powering off")
		return initsys.PowerOff()
	}})
	if errors.Is(err, errRescued) {
		runRescue(console, log) // never returns
	}
	if err == nil {
		err = errors.New("agent stopped")
	}
	initsys.Fatal(console, err, DefaultConfig().FatalDelay)
}

// run is the agent outside a ramdisk (tests, a developer's machine): settings from flags.
func run(ctx context.Context, args []string, console *initsys.Console, stderr io.Writer) int {
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "ironwork-agent:", err)
		return 2
	}
	logs := server.NewLogBuffer(4 << 20)
	level := slog.LevelInfo
	if cfg.Debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(stderr, logs), &slog.HandlerOptions{Level: level}))
	env := agentEnv{log: log, console: console, logs: logs, powerOff: initsys.PowerOff}
	err = runAgent(ctx, cfg, env)
	if errors.Is(err, errRescued) {
		fmt.Fprintln(stderr, "ironwork-agent: rescued: the rescue user is set up; exiting (not PID 1, no logins to start)")
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "ironwork-agent:", err)
		return 1
	}
	return 0
}
