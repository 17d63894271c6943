package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/ironwork/ironwork/internal/server"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg := server.Default()
	fs := flag.NewFlagSet("ironwork serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: ironwork serve [flags]\n\nRuns the API and the conductor. Settings come from the defaults, then\n"+
			"the --config file (TOML, same names as the flags with '_' for '-'), then the flags.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	configFile := fs.String("config", "", "TOML configuration file")
	role := fs.String("role", cfg.Role, "both (API and conductor), api (routes work to conductors over JSON-RPC) or conductor")
	listen := fs.String("listen", cfg.Listen, "API address host:port")
	rpcListen := fs.String("rpc-listen", cfg.RPCListen, "conductor JSON-RPC address host:port (port 0: any free port; default 127.0.0.1:0 for --role conductor, none for --role both)")
	rpcURL := fs.String("rpc-url", "", "URL other servers reach this conductor's JSON-RPC at (default http(s)://<rpc-listen>)")
	rpcSecret := fs.String("rpc-secret-file", "", "file with the secret all processes share to authenticate and seal JSON-RPC (default: one generated once and kept in the database)")
	rpcCert := fs.String("rpc-tls-cert-file", "", "certificate (PEM) the conductor serves JSON-RPC over TLS with")
	rpcKey := fs.String("rpc-tls-key-file", "", "private key (PEM) of --rpc-tls-cert-file")
	rpcCA := fs.String("rpc-tls-ca-file", "", "CA (PEM) callers verify conductors' JSON-RPC certificates with (default: the system's roots)")
	tlsCert := fs.String("tls-cert", "", "certificate (PEM, with its chain) the API serves HTTPS with")
	tlsKey := fs.String("tls-key", "", "private key (PEM) of --tls-cert")
	dataDir := fs.String("data-dir", cfg.DataDir, "directory for the embedded database and files")
	database := fs.String("database", "", "database: postgres://user:pass@host/db, or an SQLite file (default <data-dir>/ironwork.db)")
	auth := fs.String("auth-strategy", "", "noauth, http_basic or keystone (default: noauth on loopback, http_basic when --http-basic-auth-file is set; keystone needs the config file's [keystone_authtoken])")
	policyFile := fs.String("policy-file", "", "oslo.policy YAML file overriding Ironic's default RBAC rules by name")
	authFile := fs.String("http-basic-auth-file", "", "htpasswd file with bcrypt entries (htpasswd -nbB user pass)")
	insecure := fs.Bool("allow-insecure-noauth", false, "allow noauth on a non-loopback address")
	publicURL := fs.String("public-url", "", "base URL of links in API answers (default: the request's host)")
	nodeCache := fs.Int("node-cache-mib", 0, "MiB of rendered nodes the API keeps to serve node lists from while the nodes are unchanged (0: 64 MiB; negative: no cache)")
	maxConc := fs.Int("api-max-concurrency", 0, "API requests handled at once; the others wait their turn in order of arrival (0: 32; negative: no bound)")
	hostname := fs.String("hostname", "", "this conductor's name (default: the machine's hostname)")
	group := fs.String("conductor-group", "", "conductor group this conductor serves")
	logLevel := fs.String("log-level", cfg.LogLevel, "debug, info, warn or error")
	logFormat := fs.String("log-format", cfg.LogFormat, "text or json")
	metricsListen := fs.String("metrics-listen", "", "serve the Prometheus metrics on this host:port of their own (default: /metrics on the API's address)")
	sendSensors := fs.Bool("send-sensor-data", false, "read the nodes' hardware sensors (IPMI, Redfish) periodically and export them as metrics")
	sensorInterval := fs.Duration("send-sensor-data-interval", cfg.SendSensorDataInterval.Duration, "how often --send-sensor-data reads the sensors")
	// Network boot and console settings: string flags named as their config keys, '-' for '_'.
	bootFlags := []struct {
		name, usage string
		dst         *string
	}{
		{"provisioning-interface", "interface of the provisioning network: DHCP, TFTP and HTTP boot run on it (default: no boot services)", &cfg.ProvisioningInterface},
		{"provisioning-netns", "network namespace the provisioning interface is in (labs; default: this process's)", &cfg.ProvisioningNetns},
		{"dhcp-mode", "full, proxy or off (default: full with --dhcp-range, else proxy)", &cfg.DHCPMode},
		{"dhcp-range", "FIRST,LAST: addresses DHCP full mode hands out", &cfg.DHCPRange},
		{"dhcp-router", "router option of DHCP full mode's answers (default: none)", &cfg.DHCPRouter},
		{"dhcp-dns", "DNS server option of DHCP full mode's answers (default: none)", &cfg.DHCPDNS},
		{"http-boot-listen", "HTTP boot server address; an empty host means the provisioning address", &cfg.HTTPBootListen},
		{"http-boot-url", "URL nodes reach the HTTP boot server at (default http://<provisioning address>:<port>)", &cfg.HTTPBootURL},
		{"tftp-listen", "TFTP server address; an empty host means the provisioning address", &cfg.TFTPListen},
		{"ipxe-dir", "directory with undionly.kpxe, ipxe.efi and snponly.efi (Debian package ipxe)", &cfg.IPXEDir},
		{"efi-boot-file", "iPXE binary for UEFI firmware: snponly.efi or ipxe.efi", &cfg.EFIBootFile},
		{"agent-api-url", "API URL deploy agents use (default http://<provisioning address>:<API port>)", &cfg.AgentAPIURL},
		{"agent-verify-ca", "how https agents that sent no certificate of their own are verified: true (system roots), false, or a CA bundle's path (Ironic's [agent]verify_ca)", &cfg.AgentVerifyCA},
		{"kernel-append-params", "added to every deploy ramdisk's kernel command line", &cfg.KernelAppendParams},
		{"default-boot-mode", "bios or uefi, for nodes that do not say", &cfg.DefaultBootMode},
		// Serial consoles, as Ironic's [console] socat_address and port_range.
		{"console-address", "IP address the conductor serves serial consoles on, named in their tcp:// URLs (default 127.0.0.1)", &cfg.ConsoleAddress},
		{"console-port-range", "START:STOP: TCP ports serial consoles are served on (default 10000:20000)", &cfg.ConsolePortRange},
		{"console-log-dir", "directory for one <node uuid>.log per node with its console output (default: none)", &cfg.ConsoleLogDir},
	}
	bootVals := map[string]*string{}
	for _, f := range bootFlags {
		bootVals[f.name] = fs.String(f.name, *f.dst, f.usage)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ironwork serve: unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return 2
	}
	if *configFile != "" {
		if err := cfg.LoadFile(*configFile); err != nil {
			fmt.Fprintln(stderr, "ironwork serve:", err)
			return 2
		}
	}
	// Flags given on the command line win over the file.
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "role":
			cfg.Role = *role
		case "listen":
			cfg.Listen = *listen
		case "rpc-listen":
			cfg.RPCListen = *rpcListen
		case "rpc-url":
			cfg.RPCURL = *rpcURL
		case "rpc-secret-file":
			cfg.RPCSecretFile = *rpcSecret
		case "rpc-tls-cert-file":
			cfg.RPCTLSCertFile = *rpcCert
		case "rpc-tls-key-file":
			cfg.RPCTLSKeyFile = *rpcKey
		case "rpc-tls-ca-file":
			cfg.RPCTLSCAFile = *rpcCA
		case "tls-cert":
			cfg.TLSCertFile = *tlsCert
		case "tls-key":
			cfg.TLSKeyFile = *tlsKey
		case "data-dir":
			cfg.DataDir = *dataDir
		case "database":
			cfg.Database = *database
		case "auth-strategy":
			cfg.AuthStrategy = *auth
		case "http-basic-auth-file":
			cfg.HTTPBasicAuthFile = *authFile
		case "policy-file":
			cfg.PolicyFile = *policyFile
		case "allow-insecure-noauth":
			cfg.AllowInsecureNoauth = *insecure
		case "public-url":
			cfg.PublicURL = *publicURL
		case "node-cache-mib":
			cfg.NodeCacheMiB = *nodeCache
		case "api-max-concurrency":
			cfg.APIMaxConcurrency = *maxConc
		case "hostname":
			cfg.Hostname = *hostname
		case "conductor-group":
			cfg.ConductorGroup = *group
		case "log-level":
			cfg.LogLevel = *logLevel
		case "log-format":
			cfg.LogFormat = *logFormat
		case "metrics-listen":
			cfg.MetricsListen = *metricsListen
		case "send-sensor-data":
			cfg.SendSensorData = *sendSensors
		case "send-sensor-data-interval":
			cfg.SendSensorDataInterval.Duration = *sensorInterval
		}
		for _, b := range bootFlags {
			if b.name == f.Name {
				*b.dst = *bootVals[b.name]
			}
		}
	})
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "ironwork serve:", err)
		return 2
	}
	log := server.NewLogger(cfg, stderr)
	srv, err := server.Start(ctx, cfg, log)
	if err != nil {
		log.Error("cannot start", "error", err)
		return 1
	}
	defer srv.Close()
	if srv.Addr() != "" {
		fmt.Fprintf(stdout, "Ironwork API on %s (try: ironwork node list --url %s)\n", srv.URL(), srv.URL())
	} else {
		fmt.Fprintf(stdout, "Ironwork conductor %s running\n", cfg.Hostname)
	}
	if err := srv.Serve(ctx); err != nil {
		log.Error("server stopped", "error", err)
		return 1
	}
	return 0
}
