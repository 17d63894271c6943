// Package server wires an Ironwork server together from its configuration: the store, the API
// and the conductor registration, and runs them until its context ends. It owns the serve
// configuration and its validation; it holds no domain logic of its own.
package server

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/ironwork/ironwork/internal/console"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/dhcp"
	"github.com/ironwork/ironwork/internal/driver/direct"
)

// Config is the configuration of `ironwork serve`. Zero values mean the defaults.
type Config struct {
	// Role is what this process runs: "both" (the API and a conductor, the default), "api"
	// (the API only, sending each node's work to its conductor) or "conductor".
	Role string `toml:"role"`
	// Listen is the API's address (Ironic's port by default).
	Listen string `toml:"listen"`
	// RPCListen is where the conductor answers JSON-RPC from API-only servers; port 0 picks a
	// free port. Empty means 127.0.0.1:0 for role conductor and no RPC port at all for role
	// both (its API calls its own conductor directly). RPCURL is the address other servers
	// use; empty means http(s)://<RPCListen>.
	RPCListen string `toml:"rpc_listen"`
	RPCURL    string `toml:"rpc_url"`
	// RPCSecretFile holds the secret every process of the deployment shares to authenticate
	// and seal JSON-RPC; empty means a secret generated once and kept in the database.
	RPCSecretFile string `toml:"rpc_secret_file"`
	// RPCTLSCertFile and RPCTLSKeyFile make the conductor serve JSON-RPC over TLS;
	// RPCTLSCAFile is the authority callers verify conductors' certificates with (the
	// system's roots when empty).
	RPCTLSCertFile string `toml:"rpc_tls_cert_file"`
	// TLSCertFile and TLSKeyFile (PEM) make the API answer over HTTPS only.
	TLSCertFile   string `toml:"tls_cert_file"`
	TLSKeyFile    string `toml:"tls_key_file"`
	RPCTLSKeyFile string `toml:"rpc_tls_key_file"`
	RPCTLSCAFile  string `toml:"rpc_tls_ca_file"`
	// DataDir holds the embedded database and, later, images and boot files.
	DataDir string `toml:"data_dir"`
	// Database is a PostgreSQL URL (postgres://...) or an SQLite path; empty means
	// <data_dir>/ironwork.db.
	Database string `toml:"database"`
	// AuthStrategy is "noauth", "http_basic" or "keystone"; empty picks noauth on loopback and
	// requires http_basic elsewhere.
	AuthStrategy string `toml:"auth_strategy"`
	// Keystone is the [keystone_authtoken] section: how auth_strategy keystone validates tokens.
	Keystone KeystoneAuthConfig `toml:"keystone_authtoken"`
	// PolicyFile overrides Ironic's default RBAC rules by name (oslo.policy YAML; Ironic's
	// [oslo_policy]policy_file). Empty keeps the defaults.
	PolicyFile string `toml:"policy_file"`
	// RBACServiceProjectName is the project whose "service" role holders pass Ironic's
	// rule:service_role (Ironic's rbac_service_project_name; default "service").
	RBACServiceProjectName string `toml:"rbac_service_project_name"`
	// HTTPBasicAuthFile is the htpasswd file (bcrypt entries) for http_basic.
	HTTPBasicAuthFile string `toml:"http_basic_auth_file"`
	// AllowInsecureNoauth permits noauth on a non-loopback address.
	AllowInsecureNoauth bool `toml:"allow_insecure_noauth"`
	// PublicURL is the base of links in API responses; empty uses the request's host.
	PublicURL string `toml:"public_url"`
	// NodeCacheMiB bounds the API's cache of rendered nodes, from which node lists are served
	// while the nodes are unchanged (docs/decisions.md); 0 means 64 MiB, a negative value turns it off.
	NodeCacheMiB int `toml:"node_cache_mib"`
	// APIMaxConcurrency bounds the API requests handled at once; the others wait their turn in
	// order of arrival (the event stream and console websockets excepted). 0 means 32, a
	// negative value no bound.
	APIMaxConcurrency int `toml:"api_max_concurrency"`
	// Hostname names this conductor; empty uses the machine's hostname.
	Hostname string `toml:"hostname"`
	// ConductorGroup is the group this conductor serves.
	ConductorGroup string `toml:"conductor_group"`
	// HeartbeatInterval is how often the conductor records that it is alive.
	HeartbeatInterval Duration `toml:"heartbeat_interval"`
	// HeartbeatTimeout is how old a heartbeat may be for its conductor to count as alive.
	HeartbeatTimeout Duration `toml:"heartbeat_timeout"`
	// SyncLocalStateInterval is how often a conductor looks for deployed nodes to take over
	// while its hash ring is unchanged (Ironic's [conductor]sync_local_state_interval, 180 s);
	// when a conductor joins or dies the others look at their next heartbeat.
	SyncLocalStateInterval Duration `toml:"sync_local_state_interval"`
	// PowerSyncInterval is how often power states are compared with the hardware.
	PowerSyncInterval Duration `toml:"power_sync_interval"`
	// PowerSyncWorkers is how many nodes' BMCs a power sync reads at once (Ironic's
	// [conductor]sync_power_state_workers, default 8). A pass over N nodes whose BMCs answer
	// in L takes about N*L/workers: 20,000 nodes at 50 ms need 17 to fit in 60 s.
	PowerSyncWorkers int `toml:"power_sync_workers"`
	// CallbackTimeout fails nodes that wait longer for an agent or inspection callback.
	CallbackTimeout Duration `toml:"callback_timeout"`
	// RescueCallbackTimeout fails nodes whose rescue ramdisk does not call back in time
	// (Ironic's [conductor]rescue_callback_timeout, 30 minutes).
	RescueCallbackTimeout Duration `toml:"rescue_callback_timeout"`
	// TimeoutCheckInterval is how often waiting nodes are checked against CallbackTimeout.
	TimeoutCheckInterval Duration `toml:"timeout_check_interval"`
	// BootRetryTimeout, when set, power-cycles a node in deploy, clean or rescue wait whose
	// agent has not called back for that long into its network boot again (Ironic's
	// [pxe]boot_retry_timeout, off by default); it must be shorter than callback_timeout.
	BootRetryTimeout Duration `toml:"boot_retry_timeout"`
	// BMCPollInterval is how often the BMC work that clean, deploy and service steps wait on
	// (Redfish update tasks, BIOS settings applied at boot) is polled (default 30 s).
	BMCPollInterval Duration `toml:"bmc_poll_interval"`
	// EventsPollInterval is how often the API looks in the database for node changes made by
	// other processes, for the events stream (its own changes are streamed at once).
	EventsPollInterval Duration `toml:"events_poll_interval"`
	// AutomatedClean runs the clean steps when nodes are provided or undeployed (default true).
	AutomatedClean *bool `toml:"automated_clean"`
	// Workers bounds the conductor's background work (default 300).
	Workers int `toml:"workers"`
	// FastTrack leaves the agent running after cleaning, and a deploy that finds it
	// heartbeating within FastTrackTimeout uses it without a reboot (Ironic's [deploy]
	// fast_track, off by default, and fast_track_timeout, default 300 s).
	FastTrack        bool     `toml:"fast_track"`
	FastTrackTimeout Duration `toml:"fast_track_timeout"`
	// LogLevel is debug, info, warn or error; LogFormat is text or json.
	LogLevel  string `toml:"log_level"`
	LogFormat string `toml:"log_format"`
	// MetricsListen serves the Prometheus metrics (/metrics) on an address of their own, with
	// the API's authentication; empty serves them on the API's address (and not at all for
	// role conductor).
	MetricsListen string `toml:"metrics_listen"`
	// MetricsCountInterval is how old the node counts of a scrape (ironwork_nodes) may be: the
	// processes sharing a database count the nodes table once per interval between them, and
	// the scrapes in between show the last count. 0 counts at every scrape. Default 10 s.
	MetricsCountInterval Duration `toml:"metrics_count_interval"`
	// SendSensorData has the conductor read its nodes' hardware sensors every
	// SendSensorDataInterval and export them as metrics (Ironic's [conductor] options of the
	// same names; off by default, every 600 s).
	SendSensorData         bool     `toml:"send_sensor_data"`
	SendSensorDataInterval Duration `toml:"send_sensor_data_interval"`
	// Drivers selects the enabled hardware types and interfaces.
	Drivers DriversConfig `toml:"drivers"`

	// Serial consoles (Ironic's [console]). ConsoleAddress is where the conductor serves
	// consoles and what their tcp:// URLs name (default 127.0.0.1; Ironic's socat_address);
	// ConsolePortRange is START:STOP (default 10000:20000); ConsoleLogDir, when set, gets a
	// <node uuid>.log per node with everything its console printed.
	ConsoleAddress   string `toml:"console_address"`
	ConsolePortRange string `toml:"console_port_range"`
	ConsoleLogDir    string `toml:"console_log_dir"`

	// Network boot. The boot services (DHCP, TFTP, HTTP boot, router advertisements) run when
	// ProvisioningInterface is set; nodes network-boot from its first IPv4 address.
	ProvisioningInterface string `toml:"provisioning_interface"`
	// ProvisioningNetns opens the boot services' sockets inside a named network namespace
	// (ip netns add), for labs whose provisioning network lives in one.
	ProvisioningNetns string `toml:"provisioning_netns"`
	// DHCPMode is full (addresses from DHCPRange), proxy (boot options beside the site's DHCP
	// server) or off; empty means full when DHCPRange is set and proxy otherwise.
	DHCPMode string `toml:"dhcp_mode"`
	// DHCPRange is FIRST,LAST: the addresses full mode hands out.
	DHCPRange string `toml:"dhcp_range"`
	// DHCPRouter and DHCPDNS are optional options of full mode's answers.
	DHCPRouter string `toml:"dhcp_router"`
	DHCPDNS    string `toml:"dhcp_dns"`
	// DHCPLeaseTime is how long full mode's leases last.
	DHCPLeaseTime Duration `toml:"dhcp_lease_time"`
	// DHCPMTU is option 26 of full mode's answers on the provisioning network (0: none).
	DHCPMTU int `toml:"dhcp_mtu"`
	// DHCPSubnets are the networks behind DHCP relays ([[dhcp_subnet]] tables): racks on
	// subnets of their own whose switches relay DHCP to this server.
	DHCPSubnets []DHCPSubnet `toml:"dhcp_subnet"`
	// DHCP6 is the IPv6 provisioning subnet ([dhcp6]): DHCPv6 and router advertisements.
	DHCP6 DHCP6Config `toml:"dhcp6"`
	// HTTPBootListen is the HTTP boot server's address; HTTPBootURL is how nodes reach it
	// (default http://<provisioning address>:<port>).
	HTTPBootListen string `toml:"http_boot_listen"`
	HTTPBootURL    string `toml:"http_boot_url"`
	// TFTPListen is the TFTP server's address.
	TFTPListen string `toml:"tftp_listen"`
	// IPXEDir holds the iPXE binaries served to firmware (Debian's ipxe package).
	IPXEDir string `toml:"ipxe_dir"`
	// EFIBootFile is the iPXE binary for UEFI firmware: snponly.efi or ipxe.efi.
	EFIBootFile string `toml:"efi_boot_file"`
	// ARM64BootLoader is the arm64 UEFI network boot loader (GRUB, scripts/grub-arm64.sh
	// builds it) served to ARM64 UEFI clients (DHCP architectures 11 and 19); missing, they
	// cannot network-boot (logged at start).
	ARM64BootLoader string `toml:"arm64_boot_loader"`
	// DeployKernelByArch and DeployRamdiskByArch are the deploy kernel and ramdisk of nodes
	// whose driver_info has none, by properties.cpu_arch (x86_64, aarch64; arm64 is taken as
	// aarch64), as Ironic's [conductor]deploy_kernel_by_arch and deploy_ramdisk_by_arch: URLs,
	// or paths under file_url_allowed_paths.
	DeployKernelByArch  map[string]string `toml:"deploy_kernel_by_arch"`
	DeployRamdiskByArch map[string]string `toml:"deploy_ramdisk_by_arch"`
	// AgentAPIURL is the API's URL as deploy agents reach it (default
	// http://<provisioning address>:<API port>).
	AgentAPIURL string `toml:"agent_api_url"`
	// KernelAppendParams are added to every deploy ramdisk's kernel command line.
	KernelAppendParams string `toml:"kernel_append_params"`
	// DefaultBootMode is bios or uefi, for nodes that do not say.
	DefaultBootMode string `toml:"default_boot_mode"`
	// AgentPowerOffTimeout is how long a deploy waits for the agent to power the node off
	// before the BMC does (default 2m).
	AgentPowerOffTimeout Duration `toml:"agent_power_off_timeout"`
	// AgentCommandTimeout bounds one call to a deploy agent (Ironic's [agent]command_timeout;
	// default 60s) and AgentMaxCommandAttempts is how often a call that got no answer is made
	// (Ironic's [agent]max_command_attempts; default 3).
	AgentCommandTimeout     Duration `toml:"agent_command_timeout"`
	AgentMaxCommandAttempts int      `toml:"agent_max_command_attempts"`
	// AgentVerifyCA verifies agents that serve https without sending their own certificate
	// (Ironic's [agent]verify_ca): "true" (the default: the system's roots), "false", or a
	// CA bundle's path. Agents with automatic TLS are always held to the certificate they sent.
	AgentVerifyCA string `toml:"agent_verify_ca"`
	// AgentRequireTLS refuses heartbeats with a plain-HTTP callback URL (Ironic's
	// [agent]require_tls).
	AgentRequireTLS bool `toml:"agent_require_tls"`
	// ImageDownloadSource is the default image_download_source of the direct deploy
	// (Ironic's [agent]image_download_source): http (the default; the agent downloads the
	// image itself) or local (the conductor caches it and serves it from its HTTP boot
	// server). A node's instance_info or driver_info overrides it.
	ImageDownloadSource string `toml:"image_download_source"`
	// OCIPlainHTTPRegistries are OCI registries (host:port) spoken to over plain HTTP rather
	// than HTTPS, as container tools' insecure registries: a registry on a lab network.
	OCIPlainHTTPRegistries []string `toml:"oci_plain_http_registries"`
	// FileURLAllowedPaths are the directories deploy kernels and ramdisks (and file:// instance
	// images and checksum files) may come from as local files (default <data_dir>/ramdisk
	// and /var/cache/ironwork).
	FileURLAllowedPaths []string `toml:"file_url_allowed_paths"`
	// ImageCacheSize (MiB) and ImageCacheTTL bound the conductor's image cache.
	ImageCacheSize int64    `toml:"image_cache_size"`
	ImageCacheTTL  Duration `toml:"image_cache_ttl"`

	// InspectionRules configures the inspection rules engine (built-in rules, masking).
	InspectionRules InspectionRulesConfig `toml:"inspection_rules"`

	// Inspection tunes in-band inspection (Ironic's [inspector] options).
	Inspection InspectionConfig `toml:"inspection"`
	// Discovery enrols machines nobody enrolled that boot the ramdisk (Ironic's [auto_discovery]).
	Discovery DiscoveryConfig `toml:"discovery"`
}

// KeystoneAuthConfig is the [keystone_authtoken] section (keystonemiddleware's names): the
// service user that validates callers' tokens.
type KeystoneAuthConfig struct {
	AuthURL           string `toml:"auth_url"`
	Username          string `toml:"username"`
	Password          string `toml:"password"`
	UserDomainName    string `toml:"user_domain_name"`
	ProjectName       string `toml:"project_name"`
	ProjectDomainName string `toml:"project_domain_name"`
	// TokenCacheTime is how long a validated token is trusted before Keystone is asked again
	// (default 60 s): a revoked token is refused at the latest this long after revocation.
	TokenCacheTime Duration `toml:"token_cache_time"`
}

// InspectionConfig is the [inspection] section.
type InspectionConfig struct {
	// AddPorts is pxe (default), active, all or disabled: which interfaces get ports.
	AddPorts string `toml:"add_ports"`
	// KeepPorts is all (default), present or added: which existing ports stay.
	KeepPorts string `toml:"keep_ports"`
	// InspectWaitTimeout fails a node that waits longer for its inventory (default 30m).
	InspectWaitTimeout Duration `toml:"inspect_wait_timeout"`
}

// DiscoveryConfig is the [discovery] section.
type DiscoveryConfig struct {
	Enabled bool `toml:"enabled"`
	// DefaultDriver is the hardware type of discovered nodes (default ipmi); the inventory's BMC
	// address goes into its address key (ipmi_address, redfish_address).
	DefaultDriver string `toml:"default_driver"`
	// DefaultDriverInfo is copied into each discovered node's driver_info (credentials).
	DefaultDriverInfo map[string]any `toml:"default_driver_info"`
	// DeployKernel and DeployRamdisk are what unknown machines boot to be discovered (URLs, or
	// paths under file_url_allowed_paths).
	DeployKernel  string `toml:"deploy_kernel"`
	DeployRamdisk string `toml:"deploy_ramdisk"`
}

// conductorInspection is the conductor's inspection configuration.
func (c Config) conductorInspection() conductor.InspectionConfig {
	return conductor.InspectionConfig{AddPorts: c.Inspection.AddPorts, KeepPorts: c.Inspection.KeepPorts,
		WaitTimeout: c.Inspection.InspectWaitTimeout.Duration,
		Discovery: conductor.DiscoveryConfig{Enabled: c.Discovery.Enabled, Driver: c.Discovery.DefaultDriver,
			DriverInfo: c.Discovery.DefaultDriverInfo}}
}

// DriversConfig selects hardware types and interface implementations.
type DriversConfig struct {
	EnabledHardwareTypes []string            `toml:"enabled_hardware_types"`
	EnabledInterfaces    map[string][]string `toml:"enabled_interfaces"`
	DefaultInterfaces    map[string]string   `toml:"default_interfaces"`
}

// Duration is a time.Duration written as "10s" in the config file.
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w", b, err)
	}
	d.Duration = v
	return nil
}

// DHCPSubnet is a network behind DHCP relays, as written in the config file.
type DHCPSubnet struct {
	// Network is a CIDR, e.g. 10.1.0.0/24; relays' giaddr in it select it.
	Network string `toml:"network"`
	// Range is FIRST,LAST: the addresses handed out there (full mode).
	Range string `toml:"range"`
	// Router defaults to the relay's own address; DNS is a comma-separated list.
	Router    string   `toml:"router"`
	DNS       string   `toml:"dns"`
	MTU       int      `toml:"mtu"`
	LeaseTime Duration `toml:"lease_time"`
}

// dhcpSubnets converts the [[dhcp_subnet]] tables, naming each malformed value.
func (c *Config) dhcpSubnets() ([]dhcp.Subnet, []error) {
	var out []dhcp.Subnet
	var errs []error
	for i, d := range c.DHCPSubnets {
		name := fmt.Sprintf("dhcp_subnet %d (%s)", i+1, d.Network)
		_, n, err := net.ParseCIDR(strings.TrimSpace(d.Network))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: network: want an IPv4 CIDR such as 10.1.0.0/24", name))
			continue
		}
		sn := dhcp.Subnet{Network: n, MTU: d.MTU, LeaseTime: d.LeaseTime.Duration}
		if d.Range != "" {
			if sn.RangeStart, sn.RangeEnd, err = ParseRange(d.Range); err != nil {
				errs = append(errs, fmt.Errorf("%s: range: %w", name, err))
				continue
			}
		}
		if d.Router != "" {
			if sn.Router = net.ParseIP(strings.TrimSpace(d.Router)).To4(); sn.Router == nil {
				errs = append(errs, fmt.Errorf("%s: router %q is not an IPv4 address", name, d.Router))
			}
		}
		for _, v := range strings.Split(d.DNS, ",") {
			if v = strings.TrimSpace(v); v == "" {
				continue
			}
			ip := net.ParseIP(v).To4()
			if ip == nil {
				errs = append(errs, fmt.Errorf("%s: dns %q is not an IPv4 address", name, v))
				continue
			}
			sn.DNS = append(sn.DNS, ip)
		}
		if d.LeaseTime.Duration != 0 && d.LeaseTime.Duration < time.Minute {
			errs = append(errs, fmt.Errorf("%s: lease_time must be at least 1m", name))
		}
		out = append(out, sn)
	}
	return out, errs
}

// Default returns the configuration with every default filled in.
func Default() Config {
	return Config{
		Role:                   "both",
		Listen:                 "127.0.0.1:6385",
		DataDir:                defaultDataDir(),
		HeartbeatInterval:      Duration{10 * time.Second},
		HeartbeatTimeout:       Duration{60 * time.Second},
		SyncLocalStateInterval: Duration{180 * time.Second},
		MetricsCountInterval:   Duration{10 * time.Second},
		PowerSyncInterval:      Duration{60 * time.Second},
		CallbackTimeout:        Duration{30 * time.Minute},
		TimeoutCheckInterval:   Duration{60 * time.Second},
		BMCPollInterval:        Duration{30 * time.Second},
		EventsPollInterval:     Duration{time.Second},
		LogLevel:               "info",
		LogFormat:              "text",
		SendSensorDataInterval: Duration{600 * time.Second},
		DHCPLeaseTime:          Duration{time.Hour},
		HTTPBootListen:         ":8080",
		TFTPListen:             ":69",
		IPXEDir:                "/usr/lib/ipxe",
		EFIBootFile:            "snponly.efi",
		ARM64BootLoader:        "/var/cache/ironwork/grub-arm64/grubnetaa64.efi",
		KernelAppendParams:     "console=tty0 console=ttyS0,115200n8",
		DefaultBootMode:        "uefi",
		ImageCacheSize:         20480,
		AgentPowerOffTimeout:   Duration{2 * time.Minute},
		ImageCacheTTL:          Duration{7 * 24 * time.Hour},
		RescueCallbackTimeout:  Duration{30 * time.Minute},
	}
}

func defaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/ironwork"
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "ironwork")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "ironwork")
	}
	return "ironwork-data"
}

// LoadFile reads a TOML config file over c; unknown keys are errors.
func (c *Config) LoadFile(path string) error {
	md, err := toml.DecodeFile(path, c)
	if err != nil {
		return fmt.Errorf("read config %s: %w", path, err)
	}
	if un := md.Undecoded(); len(un) > 0 {
		keys := make([]string, len(un))
		for i, k := range un {
			keys[i] = k.String()
		}
		return fmt.Errorf("config %s: unknown settings: %s", path, strings.Join(keys, ", "))
	}
	return nil
}

// DatabaseURL returns the database to open.
func (c Config) DatabaseURL() string {
	if c.Database != "" {
		return c.Database
	}
	return "sqlite://" + filepath.Join(c.DataDir, "ironwork.db")
}

// Loopback reports whether the listen address is a loopback address.
func (c Config) Loopback() bool { return loopback(c.Listen) }

// loopback reports whether a host:port address is on the loopback interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Validate checks the configuration and resolves the automatic choices.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen: %q is not host:port: %w", c.Listen, err))
	}
	switch c.ImageDownloadSource {
	case "", "http", "local":
	default:
		return fmt.Errorf("image_download_source %q is not one of http, local", c.ImageDownloadSource)
	}
	if c.AgentCommandTimeout.Duration < 0 || c.AgentMaxCommandAttempts < 0 {
		errs = append(errs, fmt.Errorf("agent_command_timeout and agent_max_command_attempts must not be negative (0 means the default)"))
	}
	switch c.Role {
	case "both", "api", "conductor":
	default:
		errs = append(errs, fmt.Errorf("role: %q is not both, api or conductor", c.Role))
	}
	if c.Role == "conductor" && c.RPCListen == "" {
		c.RPCListen = "127.0.0.1:0"
	}
	if c.Role != "api" && c.RPCListen != "" {
		if _, _, err := net.SplitHostPort(c.RPCListen); err != nil {
			errs = append(errs, fmt.Errorf("rpc_listen: %q is not host:port: %w", c.RPCListen, err))
		}
	}
	if _, _, err := direct.ParseVerifyCA(c.AgentVerifyCA); err != nil {
		errs = append(errs, err)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("tls_cert_file and tls_key_file: set both or neither"))
	}
	if (c.RPCTLSCertFile == "") != (c.RPCTLSKeyFile == "") {
		errs = append(errs, errors.New("rpc_tls_cert_file and rpc_tls_key_file: set both or neither"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir: must not be empty"))
	}
	if c.ConsolePortRange != "" {
		if _, err := console.ParsePortRange(c.ConsolePortRange); err != nil {
			errs = append(errs, fmt.Errorf("console_port_range: %w", err))
		}
	}
	if c.ConsoleAddress != "" && net.ParseIP(c.ConsoleAddress) == nil {
		errs = append(errs, fmt.Errorf("console_address: %q is not an IP address", c.ConsoleAddress))
	}
	switch c.AuthStrategy {
	case "":
		c.AuthStrategy = "noauth"
		if c.HTTPBasicAuthFile != "" {
			c.AuthStrategy = "http_basic"
		}
	case "noauth", "http_basic":
	case "keystone":
		if c.Keystone.AuthURL == "" || c.Keystone.Username == "" || c.Keystone.Password == "" {
			errs = append(errs, errors.New("auth_strategy keystone needs [keystone_authtoken] auth_url, username and password"))
		}
	default:
		errs = append(errs, fmt.Errorf("auth_strategy: %q is not noauth, http_basic or keystone", c.AuthStrategy))
	}
	if c.AuthStrategy == "http_basic" && c.HTTPBasicAuthFile == "" {
		errs = append(errs, errors.New("auth_strategy http_basic needs http_basic_auth_file"))
	}
	if c.AuthStrategy == "noauth" && !c.Loopback() && !c.AllowInsecureNoauth {
		errs = append(errs, fmt.Errorf("refusing to serve without authentication on %s, which is not a loopback address: "+
			"set --http-basic-auth-file, or --allow-insecure-noauth if the network is trusted", c.Listen))
	}
	if c.PowerSyncInterval.Duration <= 0 || c.CallbackTimeout.Duration <= 0 || c.TimeoutCheckInterval.Duration <= 0 || c.BMCPollInterval.Duration <= 0 {
		errs = append(errs, errors.New("power_sync_interval, callback_timeout and timeout_check_interval must be positive"))
	}
	if c.PowerSyncWorkers < 0 || c.PowerSyncWorkers > 1000 {
		errs = append(errs, fmt.Errorf("power_sync_workers: %d is not between 1 and 1000 (0: the default, 8)", c.PowerSyncWorkers))
	}
	if c.FastTrackTimeout.Duration < 0 {
		errs = append(errs, errors.New("fast_track_timeout must not be negative"))
	}
	if c.RescueCallbackTimeout.Duration <= 0 {
		errs = append(errs, errors.New("rescue_callback_timeout must be positive"))
	}
	if b := c.BootRetryTimeout.Duration; b < 0 || (b > 0 && (b >= c.CallbackTimeout.Duration || b >= c.RescueCallbackTimeout.Duration)) {
		errs = append(errs, fmt.Errorf("boot_retry_timeout %s must be shorter than callback_timeout (%s) and rescue_callback_timeout (%s), or 0 (off)",
			b, c.CallbackTimeout.Duration, c.RescueCallbackTimeout.Duration))
	}
	if c.EventsPollInterval.Duration <= 0 {
		errs = append(errs, errors.New("events_poll_interval must be positive"))
	}
	if c.HeartbeatInterval.Duration <= 0 || c.HeartbeatTimeout.Duration <= c.HeartbeatInterval.Duration {
		errs = append(errs, errors.New("heartbeat_timeout must be longer than a positive heartbeat_interval"))
	}
	if c.SyncLocalStateInterval.Duration <= 0 {
		errs = append(errs, errors.New("sync_local_state_interval must be positive"))
	}
	if c.MetricsCountInterval.Duration < 0 {
		errs = append(errs, errors.New("metrics_count_interval must not be negative"))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level: %q is not debug, info, warn or error", c.LogLevel))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log_format: %q is not text or json", c.LogFormat))
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			errs = append(errs, fmt.Errorf("metrics_listen: %q is not host:port: %w", c.MetricsListen, err))
		} else if c.AuthStrategy == "noauth" && !loopback(c.MetricsListen) && !c.AllowInsecureNoauth {
			errs = append(errs, fmt.Errorf("refusing to serve metrics without authentication on %s, which is not a loopback address: "+
				"set --http-basic-auth-file, or --allow-insecure-noauth if the network is trusted", c.MetricsListen))
		}
	}
	if c.SendSensorData && c.SendSensorDataInterval.Duration <= 0 {
		errs = append(errs, errors.New("send_sensor_data_interval must be positive"))
	}
	if _, err := c.DriverConfig(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.validateBoot()...)
	errs = append(errs, c.validateInspection()...)
	if err := c.InspectionRules.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// DriverConfig turns the drivers section into the domain's DriverConfig.
func (c Config) DriverConfig() (ironwork.DriverConfig, error) {
	dc := ironwork.DefaultDriverConfig()
	known := map[string]bool{}
	for _, hw := range ironwork.HardwareTypes() {
		known[hw.Name] = true
	}
	if len(c.Drivers.EnabledHardwareTypes) > 0 {
		for _, name := range c.Drivers.EnabledHardwareTypes {
			if !known[name] {
				return dc, fmt.Errorf("drivers.enabled_hardware_types: unknown hardware type %q", name)
			}
		}
		dc.EnabledHardwareTypes = c.Drivers.EnabledHardwareTypes
	}
	kinds := map[string]ironwork.InterfaceKind{}
	for _, k := range ironwork.InterfaceKinds {
		kinds[string(k)] = k
	}
	for name, impls := range c.Drivers.EnabledInterfaces {
		k, ok := kinds[name]
		if !ok {
			return dc, fmt.Errorf("drivers.enabled_interfaces: unknown interface kind %q", name)
		}
		dc.Enabled[k] = impls
	}
	for name, impl := range c.Drivers.DefaultInterfaces {
		k, ok := kinds[name]
		if !ok {
			return dc, fmt.Errorf("drivers.default_interfaces: unknown interface kind %q", name)
		}
		dc.Defaults[k] = impl
	}
	return dc, nil
}

// validateBoot checks the network boot settings.
func (c *Config) validateBoot() []error {
	var errs []error
	if c.DHCPMode == "" && c.ProvisioningInterface != "" {
		c.DHCPMode = "proxy"
		if c.DHCPRange != "" {
			c.DHCPMode = "full"
		}
	}
	switch c.DHCPMode {
	case "", "off", "proxy":
	case "full":
		if c.DHCPRange == "" {
			errs = append(errs, errors.New("dhcp_mode full needs dhcp_range FIRST,LAST (or use dhcp_mode proxy beside another DHCP server)"))
		}
	default:
		errs = append(errs, fmt.Errorf("dhcp_mode: %q is not full, proxy or off", c.DHCPMode))
	}
	if c.DHCPRange != "" {
		if _, _, err := ParseRange(c.DHCPRange); err != nil {
			errs = append(errs, fmt.Errorf("dhcp_range: %w", err))
		}
	}
	for name, v := range map[string]string{"dhcp_router": c.DHCPRouter, "dhcp_dns": c.DHCPDNS} {
		if v != "" && net.ParseIP(v).To4() == nil {
			errs = append(errs, fmt.Errorf("%s: %q is not an IPv4 address", name, v))
		}
	}
	if c.ProvisioningInterface != "" && c.Role == "conductor" && c.AgentAPIURL == "" {
		errs = append(errs, errors.New("a conductor-only server with boot services needs agent_api_url: the URL of an API server its nodes' agents can reach"))
	}
	if c.DHCPMode != "" && c.DHCPMode != "off" && c.ProvisioningInterface == "" {
		errs = append(errs, fmt.Errorf("dhcp_mode %s needs provisioning_interface", c.DHCPMode))
	}
	for name, v := range map[string]string{"http_boot_listen": c.HTTPBootListen, "tftp_listen": c.TFTPListen} {
		if _, _, err := net.SplitHostPort(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not host:port: %w", name, v, err))
		}
	}
	for name, m := range map[string]map[string]string{"deploy_kernel_by_arch": c.DeployKernelByArch, "deploy_ramdisk_by_arch": c.DeployRamdiskByArch} {
		for arch, src := range m {
			if strings.TrimSpace(arch) == "" || src == "" {
				errs = append(errs, fmt.Errorf("%s: %q = %q: want an architecture (x86_64, aarch64) and a kernel or ramdisk", name, arch, src))
			}
		}
	}
	switch c.EFIBootFile {
	case "snponly.efi", "ipxe.efi":
	default:
		errs = append(errs, fmt.Errorf("efi_boot_file: %q is not snponly.efi or ipxe.efi", c.EFIBootFile))
	}
	for _, r := range c.KernelAppendParams {
		if r < 0x20 || r > 0x7e {
			errs = append(errs, errors.New("kernel_append_params must be one line of printable characters"))
			break
		}
	}
	switch c.DefaultBootMode {
	case "bios", "uefi":
	default:
		errs = append(errs, fmt.Errorf("default_boot_mode: %q is not bios or uefi", c.DefaultBootMode))
	}
	if c.DHCPLeaseTime.Duration < time.Minute {
		errs = append(errs, errors.New("dhcp_lease_time must be at least 1m"))
	}
	if c.DHCPMTU != 0 && (c.DHCPMTU < 68 || c.DHCPMTU > 65535) {
		errs = append(errs, fmt.Errorf("dhcp_mtu: %d is outside 68..65535", c.DHCPMTU))
	}
	if subnets, serrs := c.dhcpSubnets(); len(serrs) > 0 {
		errs = append(errs, serrs...)
	} else if len(subnets) > 0 {
		if c.DHCPMode == "" || c.DHCPMode == "off" {
			errs = append(errs, errors.New("dhcp_subnet needs dhcp_mode full or proxy (and provisioning_interface)"))
		}
		var start, end net.IP
		if c.DHCPMode == "full" {
			start, end, _ = ParseRange(c.DHCPRange)
		}
		if err := dhcp.ValidateSubnets(dhcp.Mode(c.DHCPMode), subnets, start, end); err != nil {
			errs = append(errs, fmt.Errorf("dhcp_subnet: %w", err))
		}
	}
	errs = append(errs, c.validateDHCP6()...)
	if c.ImageCacheSize <= 0 || c.ImageCacheTTL.Duration <= 0 {
		errs = append(errs, errors.New("image_cache_size and image_cache_ttl must be positive"))
	}
	return errs
}

// ParseRange parses a DHCP range "FIRST,LAST" of IPv4 addresses.
func ParseRange(s string) (first, last net.IP, err error) {
	a, b, ok := strings.Cut(s, ",")
	first, last = net.ParseIP(strings.TrimSpace(a)).To4(), net.ParseIP(strings.TrimSpace(b)).To4()
	if !ok || first == nil || last == nil {
		return nil, nil, fmt.Errorf("%q is not FIRST,LAST with two IPv4 addresses", s)
	}
	if bytes.Compare(first, last) > 0 {
		return nil, nil, fmt.Errorf("%q: the first address comes after the last", s)
	}
	return first, last, nil
}

// validateInspection checks the inspection and discovery sections.
func (c Config) validateInspection() []error {
	var errs []error
	if err := c.conductorInspection().Validate(); err != nil {
		errs = append(errs, fmt.Errorf("inspection: %w", err))
	}
	if c.Inspection.InspectWaitTimeout.Duration < 0 {
		errs = append(errs, errors.New("inspection.inspect_wait_timeout must not be negative (0 means 30m)"))
	}
	if !c.Discovery.Enabled {
		return errs
	}
	driver := c.Discovery.DefaultDriver
	if driver == "" {
		driver = "ipmi"
	}
	if dc, err := c.DriverConfig(); err == nil {
		if !dc.HasHardwareType(driver) {
			errs = append(errs, fmt.Errorf("discovery.default_driver: hardware type %q is not enabled", driver))
		}
	}
	if (c.Discovery.DeployKernel == "") != (c.Discovery.DeployRamdisk == "") {
		errs = append(errs, errors.New("discovery.deploy_kernel and discovery.deploy_ramdisk: set both or neither"))
	}
	return errs
}
