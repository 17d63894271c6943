package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/internal/server"
)

func TestBootConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name     string
		set      func(*server.Config)
		wantErr  string // "" means valid
		wantMode string
	}{
		{"no boot services", func(*server.Config) {}, "", ""},
		{"interface alone is proxy", func(c *server.Config) { c.ProvisioningInterface = "eth1" }, "", "proxy"},
		{"a range makes full", func(c *server.Config) { c.ProvisioningInterface, c.DHCPRange = "eth1", "10.0.0.10,10.0.0.20" }, "", "full"},
		{"full needs a range", func(c *server.Config) { c.ProvisioningInterface, c.DHCPMode = "eth1", "full" }, "needs dhcp_range", ""},
		{"range backwards", func(c *server.Config) { c.ProvisioningInterface, c.DHCPRange = "eth1", "10.0.0.20,10.0.0.10" }, "comes after", ""},
		{"range not IPv4", func(c *server.Config) { c.ProvisioningInterface, c.DHCPRange = "eth1", "fd00::1,fd00::2" }, "two IPv4", ""},
		{"mode without interface", func(c *server.Config) { c.DHCPMode = "proxy" }, "needs provisioning_interface", ""},
		{"unknown mode", func(c *server.Config) { c.ProvisioningInterface, c.DHCPMode = "eth1", "relay" }, "not full, proxy or off", ""},
		{"bad router", func(c *server.Config) { c.DHCPRouter = "router" }, "dhcp_router", ""},
		{"bad efi file", func(c *server.Config) { c.EFIBootFile = "grub.efi" }, "efi_boot_file", ""},
		{"bad boot mode", func(c *server.Config) { c.DefaultBootMode = "legacy" }, "default_boot_mode", ""},
		{"deploy ramdisk by arch", func(c *server.Config) {
			c.DeployKernelByArch = map[string]string{"aarch64": "/var/cache/ironwork/a.kernel"}
			c.DeployRamdiskByArch = map[string]string{"arm64": "/var/cache/ironwork/a.initramfs"}
		}, "", ""},
		{"deploy kernel by arch without a kernel", func(c *server.Config) { c.DeployKernelByArch = map[string]string{"aarch64": ""} }, "deploy_kernel_by_arch", ""},
		{"bad tftp listen", func(c *server.Config) { c.TFTPListen = "69" }, "tftp_listen", ""},
		{"negative agent attempts", func(c *server.Config) { c.AgentMaxCommandAttempts = -1 }, "agent_max_command_attempts", ""},
		{"power sync workers", func(c *server.Config) { c.PowerSyncWorkers = 100 }, "", ""},
		{"negative power sync workers", func(c *server.Config) { c.PowerSyncWorkers = -1 }, "power_sync_workers", ""},
		{"too many power sync workers", func(c *server.Config) { c.PowerSyncWorkers = 5000 }, "power_sync_workers", ""},
		{"metrics on loopback", func(c *server.Config) { c.MetricsListen = "127.0.0.1:9608" }, "", ""},
		{"bad metrics listen", func(c *server.Config) { c.MetricsListen = "9608" }, "metrics_listen", ""},
		{"metrics exposed without auth", func(c *server.Config) { c.MetricsListen = "0.0.0.0:9608" }, "refusing to serve metrics without authentication", ""},
		{"metrics exposed, noauth allowed", func(c *server.Config) { c.MetricsListen, c.AllowInsecureNoauth = "0.0.0.0:9608", true }, "", ""},
		{"relayed racks", func(c *server.Config) {
			c.ProvisioningInterface, c.DHCPRange, c.DHCPMTU = "eth1", "10.0.0.10,10.0.0.20", 9000
			c.DHCPSubnets = []server.DHCPSubnet{{Network: "10.1.0.0/24", Range: "10.1.0.10,10.1.0.99", DNS: "10.0.0.1, 10.0.0.2", MTU: 1500},
				{Network: "10.2.0.0/24", Range: "10.2.0.10,10.2.0.99", Router: "10.2.0.254"}}
		}, "", "full"},
		{"relayed racks overlap", func(c *server.Config) {
			c.ProvisioningInterface, c.DHCPRange = "eth1", "10.0.0.10,10.0.0.20"
			c.DHCPSubnets = []server.DHCPSubnet{{Network: "10.1.0.0/24", Range: "10.1.0.10,10.1.0.99"}, {Network: "10.1.0.0/16", Range: "10.1.1.1,10.1.1.9"}}
		}, "overlap (networks)", ""},
		{"relayed range outside its subnet", func(c *server.Config) {
			c.ProvisioningInterface, c.DHCPRange = "eth1", "10.0.0.10,10.0.0.20"
			c.DHCPSubnets = []server.DHCPSubnet{{Network: "10.1.0.0/24", Range: "10.1.0.10,10.1.1.99"}}
		}, "not inside the subnet", ""},
		{"relayed subnet without a range in full mode", func(c *server.Config) {
			c.ProvisioningInterface, c.DHCPRange = "eth1", "10.0.0.10,10.0.0.20"
			c.DHCPSubnets = []server.DHCPSubnet{{Network: "10.1.0.0/24"}}
		}, "both ends must be IPv4", ""},
		{"relayed subnet in proxy mode needs no range", func(c *server.Config) {
			c.ProvisioningInterface, c.DHCPMode = "eth1", "proxy"
			c.DHCPSubnets = []server.DHCPSubnet{{Network: "10.1.0.0/24"}}
		}, "", "proxy"},
		{"relayed subnet bad CIDR", func(c *server.Config) {
			c.ProvisioningInterface, c.DHCPRange = "eth1", "10.0.0.10,10.0.0.20"
			c.DHCPSubnets = []server.DHCPSubnet{{Network: "10.1.0.0"}}
		}, "dhcp_subnet 1 (10.1.0.0): network", ""},
		{"relayed subnet bad dns", func(c *server.Config) {
			c.ProvisioningInterface, c.DHCPRange = "eth1", "10.0.0.10,10.0.0.20"
			c.DHCPSubnets = []server.DHCPSubnet{{Network: "10.1.0.0/24", Range: "10.1.0.10,10.1.0.99", DNS: "dns.example"}}
		}, "dns \"dns.example\"", ""},
		{"bad mtu", func(c *server.Config) { c.DHCPMTU = 10 }, "dhcp_mtu", ""},
		{"boot retry", func(c *server.Config) { c.BootRetryTimeout = server.Duration{Duration: 10 * time.Minute} }, "", ""},
		{"boot retry after the callback timeout", func(c *server.Config) {
			c.BootRetryTimeout = server.Duration{Duration: 30 * time.Minute}
		}, "boot_retry_timeout 30m0s must be shorter than callback_timeout", ""},
		{"negative boot retry", func(c *server.Config) { c.BootRetryTimeout = server.Duration{Duration: -time.Second} }, "boot_retry_timeout", ""},
		{"no take-over interval", func(c *server.Config) { c.SyncLocalStateInterval = server.Duration{} }, "sync_local_state_interval", ""},
		{"count at every scrape", func(c *server.Config) { c.MetricsCountInterval = server.Duration{} }, "", ""},
		{"negative count interval", func(c *server.Config) { c.MetricsCountInterval = server.Duration{Duration: -time.Second} }, "metrics_count_interval", ""},
		{"sensor interval", func(c *server.Config) {
			c.SendSensorData, c.SendSensorDataInterval = true, server.Duration{}
		}, "send_sensor_data_interval", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := server.Default()
			c.DataDir = t.TempDir()
			tc.set(&c)
			err := c.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
			}
			if tc.wantErr == "" && c.DHCPMode != tc.wantMode {
				t.Fatalf("dhcp mode %q, want %q", c.DHCPMode, tc.wantMode)
			}
		})
	}
}

func TestStartRefusesAMissingProvisioningInterface(t *testing.T) {
	c := server.Default()
	c.DataDir, c.Listen = t.TempDir(), "127.0.0.1:0"
	c.ProvisioningInterface = "no-such-if0"
	srv, err := server.Start(t.Context(), c, nil)
	if err == nil {
		srv.Close()
		t.Fatal("started with an interface that does not exist")
	}
	if !strings.Contains(err.Error(), "provisioning interface") || !strings.Contains(err.Error(), "no-such-if0") {
		t.Fatalf("error does not name the problem: %v", err)
	}
}

// TestDHCPSubnetsFromTheConfigFile reads relayed racks as [[dhcp_subnet]] tables.
func TestDHCPSubnetsFromTheConfigFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ironwork.toml")
	body := `provisioning_interface = "eth1"
dhcp_range = "10.0.0.10,10.0.0.20"

[[dhcp_subnet]]
network = "10.1.0.0/24"
range = "10.1.0.10,10.1.0.99"
router = "10.1.0.254"
dns = "10.0.0.1"
mtu = 9000
lease_time = "30m"

[[dhcp_subnet]]
network = "10.2.0.0/24"
range = "10.2.0.10,10.2.0.99"
`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c := server.Default()
	c.DataDir = dir
	if err := c.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.DHCPSubnets) != 2 || c.DHCPSubnets[0].MTU != 9000 || c.DHCPSubnets[0].LeaseTime.Duration != 30*time.Minute || c.DHCPSubnets[1].Network != "10.2.0.0/24" {
		t.Fatalf("subnets read: %+v", c.DHCPSubnets)
	}
}
