package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/server"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

// getJSON reads an API document at microversion ver.
func getJSON(t *testing.T, srv *server.Server, path, ver string, out any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL()+path, nil)
	req.Header.Set("X-OpenStack-Ironic-API-Version", ver)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// withLoopbackBoot runs the network boot services on loopback, so the boot interfaces
// validate as they do on a conductor host (no DHCP: nothing leaves the machine).
func withLoopbackBoot(c *server.Config) {
	c.ProvisioningInterface, c.DHCPMode = "lo", "off"
	c.HTTPBootListen, c.TFTPListen = "127.0.0.1:0", "127.0.0.1:0"
}

// TestEveryHardwareTypeValidatesWithDefaults creates a node of every hardware type with no
// interface fields and the driver_info its default interfaces need: power, management, boot
// and deploy validate, and the driver documents say what the node got.
func TestEveryHardwareTypeValidatesWithDefaults(t *testing.T) {
	deployInfo := map[string]any{"deploy_kernel": "http://127.0.0.1:9/k", "deploy_ramdisk": "http://127.0.0.1:9/r"}
	driverInfo := map[string]map[string]any{
		"fake-hardware":     {},
		"manual-management": deployInfo,
		"ipmi":              {"ipmi_address": "127.0.0.1", "ipmi_port": 9623, "ipmi_username": "admin", "ipmi_password": "pw"},
		"redfish":           {"redfish_address": "http://127.0.0.1:9", "redfish_username": "admin", "redfish_password": "pw"},
	}
	for _, hw := range []string{"ipmi", "redfish"} {
		for k, v := range deployInfo {
			driverInfo[hw][k] = v
		}
	}
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, target.DSN(t), withLoopbackBoot)
			c := gopherClient(t, srv, "1.87")
			ctx := context.Background()
			for _, hw := range ironwork.HardwareTypes() {
				di, ok := driverInfo[hw.Name]
				if !ok {
					t.Fatalf("hardware type %s has no case in this test: add its driver_info", hw.Name)
				}
				n, err := nodes.Create(ctx, c, nodes.CreateOpts{Name: "defaults-" + hw.Name, Driver: hw.Name, DriverInfo: di}).Extract()
				if err != nil {
					t.Fatalf("create %s node: %v", hw.Name, err)
				}
				if _, err := nodes.Update(ctx, c, n.UUID, nodes.UpdateOpts{nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info",
					Value: map[string]any{"image_source": "http://127.0.0.1:9/disk.img", "image_checksum": "0123456789abcdef0123456789abcdef"}}}).Extract(); err != nil {
					t.Fatal(err)
				}
				v, err := nodes.Validate(ctx, c, n.UUID).Extract()
				if err != nil {
					t.Fatal(err)
				}
				for name, r := range map[string]nodes.DriverValidation{"power": v.Power, "management": v.Management, "boot": v.Boot, "deploy": v.Deploy} {
					if !r.Result {
						t.Errorf("%s (%s %s, boot %s, deploy %s): %s does not validate: %s", hw.Name, n.PowerInterface, n.ManagementInterface,
							n.BootInterface, n.DeployInterface, name, r.Reason)
					}
				}
				// A "no-" interface says the driver does not support it, as Ironic's validate.
				for iface, r := range map[string]nodes.DriverValidation{n.BIOSInterface: v.BIOS, n.ConsoleInterface: v.Console,
					n.InspectInterface: v.Inspect, n.RAIDInterface: v.RAID, n.RescueInterface: v.Rescue, n.FirmwareInterface: v.Firmware} {
					if strings.HasPrefix(iface, "no-") && (r.Result || !strings.Contains(r.Reason, "Driver "+hw.Name+" does not support")) {
						t.Errorf("%s: %s validates as %v (%q), want unsupported", hw.Name, iface, r.Result, r.Reason)
					}
				}
				// Every interface the node got is one the driver document offers as enabled,
				// and the defaults are what the node got.
				var doc map[string]any
				getJSON(t, srv, "/v1/drivers/"+hw.Name+"?detail=true", "1.87", &doc)
				got := map[string]string{"boot": n.BootInterface, "console": n.ConsoleInterface, "deploy": n.DeployInterface,
					"inspect": n.InspectInterface, "management": n.ManagementInterface, "power": n.PowerInterface,
					"raid": n.RAIDInterface, "rescue": n.RescueInterface, "vendor": n.VendorInterface, "bios": n.BIOSInterface,
					"firmware": n.FirmwareInterface, "network": n.NetworkInterface, "storage": n.StorageInterface}
				for kind, impl := range got {
					if doc["default_"+kind+"_interface"] != impl {
						t.Errorf("%s: default_%s_interface = %v, the node got %q", hw.Name, kind, doc["default_"+kind+"_interface"], impl)
					}
					enabled, _ := doc["enabled_"+kind+"_interfaces"].([]any)
					if !slices.Contains(enabled, any(impl)) {
						t.Errorf("%s: %s interface %q not among enabled %v", hw.Name, kind, impl, enabled)
					}
				}
				// The properties are the driver_info keys of those interfaces.
				var props map[string]string
				getJSON(t, srv, "/v1/drivers/"+hw.Name+"/properties", "1.87", &props)
				for k := range di {
					if _, ok := props[k]; !ok {
						t.Errorf("%s: driver_info key %s, which the node's interfaces read, is not among the properties %v", hw.Name, k, props)
					}
				}
				foreign := map[string]string{"ipmi": "redfish_", "redfish": "ipmi_", "fake-hardware": "ipmi_", "manual-management": "redfish_"}
				for k := range props {
					if strings.HasPrefix(k, foreign[hw.Name]) {
						t.Errorf("%s: property %s belongs to interfaces the node does not have", hw.Name, k)
					}
				}
			}

			// fake-hardware with its defaults deploys.
			n, err := nodes.Create(ctx, c, nodes.CreateOpts{Name: "defaults-deploy", Driver: "fake-hardware"}).Extract()
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			provision(t, c, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage})
			waitFor(t, c, n.UUID, 10*time.Second, inState("manageable"))
			provision(t, c, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetProvide})
			waitFor(t, c, n.UUID, 10*time.Second, inState("available"))
			provision(t, c, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetActive})
			waitFor(t, c, n.UUID, 30*time.Second, inState("active"))
			t.Logf("fake-hardware with default interfaces: enroll -> active in %s", time.Since(start))
		})
	}
}
