package server_test

import (
	"strings"
	"testing"

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
		{"bad tftp listen", func(c *server.Config) { c.TFTPListen = "69" }, "tftp_listen", ""},
		{"negative agent attempts", func(c *server.Config) { c.AgentMaxCommandAttempts = -1 }, "agent_max_command_attempts", ""},
		{"metrics on loopback", func(c *server.Config) { c.MetricsListen = "127.0.0.1:9608" }, "", ""},
		{"bad metrics listen", func(c *server.Config) { c.MetricsListen = "9608" }, "metrics_listen", ""},
		{"metrics exposed without auth", func(c *server.Config) { c.MetricsListen = "0.0.0.0:9608" }, "refusing to serve metrics without authentication", ""},
		{"metrics exposed, noauth allowed", func(c *server.Config) { c.MetricsListen, c.AllowInsecureNoauth = "0.0.0.0:9608", true }, "", ""},
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
