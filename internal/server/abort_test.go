package server_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"

	"github.com/ironwork/ironwork/internal/driver/pxe"
	"github.com/ironwork/ironwork/internal/server"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

// TestAbortInWaitPowersOffAndRemovesTheBoot: a node that waits for its deploy agent (in clean
// wait or deploy wait) and is aborted ends in the failed state, powered off, with its ramdisk
// boot files and record gone, as Ironic. The nodes are fake-hardware (power recorded in the
// node) with the real ipxe boot interface on loopback and the direct deploy interface; no
// agent ever answers, so they stay in the wait state until aborted.
func TestAbortInWaitPowersOffAndRemovesTheBoot(t *testing.T) {
	cases := []struct {
		name        string
		clean       bool
		steps       []nodes.TargetProvisionState
		wait, final string
	}{
		{"clean wait", true, []nodes.TargetProvisionState{nodes.TargetProvide}, "clean wait", "clean failed"},
		{"deploy wait", false, []nodes.TargetProvisionState{nodes.TargetProvide, nodes.TargetActive}, "wait call-back", "deploy failed"},
	}
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			t.Parallel()
			data := t.TempDir()
			rd := filepath.Join(data, "ramdisk")
			if err := os.MkdirAll(rd, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"deploy.kernel", "deploy.initramfs"} {
				if err := os.WriteFile(filepath.Join(rd, f), []byte("not really "+f), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			srv := startServer(t, target.DSN(t), withLoopbackBoot, func(c *server.Config) { c.DataDir = data })
			c := gopherClient(t, srv, "1.110")
			ctx := context.Background()
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					clean := tc.clean
					n, err := nodes.Create(ctx, c, nodes.CreateOpts{Name: strings.ReplaceAll(tc.name, " ", "-"), Driver: "fake-hardware",
						BootInterface: "ipxe", DeployInterface: "direct", AutomatedClean: &clean,
						DriverInfo: map[string]any{"deploy_kernel": filepath.Join(rd, "deploy.kernel"), "deploy_ramdisk": filepath.Join(rd, "deploy.initramfs")},
					}).Extract()
					if err != nil {
						t.Fatal(err)
					}
					if _, err := nodes.Update(ctx, c, n.UUID, nodes.UpdateOpts{nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info",
						Value: map[string]any{"image_source": "http://127.0.0.1:9/disk.img", "image_checksum": "0123456789abcdef0123456789abcdef"}}}).Extract(); err != nil {
						t.Fatal(err)
					}
					provision(t, c, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage})
					waitFor(t, c, n.UUID, 10*time.Second, inState("manageable"))
					for _, verb := range tc.steps {
						provision(t, c, n.UUID, nodes.ProvisionStateOpts{Target: verb})
						if verb == nodes.TargetProvide && !clean {
							waitFor(t, c, n.UUID, 10*time.Second, inState("available"))
						}
					}
					waiting := waitFor(t, c, n.UUID, 20*time.Second, inState(tc.wait))
					dir := pxe.NodeDir(filepath.Join(data, "boot"), n.UUID)
					if _, err := os.Stat(dir); err != nil || waiting.PowerState != "power on" {
						t.Fatalf("in %s: boot files %v, power %q: the node was not booted into its ramdisk", tc.wait, err, waiting.PowerState)
					}

					start := time.Now()
					provision(t, c, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetAbort})
					got := waitFor(t, c, n.UUID, 20*time.Second, func(n *nodes.Node) bool { return n.ProvisionState == tc.final })
					t.Logf("abort in %s: %s after %s", tc.wait, got.ProvisionState, time.Since(start))
					if got.PowerState != "power off" {
						t.Errorf("power state after abort = %q, want power off", got.PowerState)
					}
					if _, err := os.Stat(dir); !os.IsNotExist(err) {
						t.Errorf("boot files of the node remain after abort: %v", err)
					}
					for _, k := range []string{"ironwork_boot", "agent_url", "agent_secret_token"} {
						if v, ok := got.DriverInternalInfo[k]; ok {
							t.Errorf("driver_internal_info.%s remains after abort: %v", k, v)
						}
					}
					if !strings.Contains(got.LastError, "aborted by request") || got.Reservation != "" {
						t.Errorf("after abort: last_error %q, reservation %q", got.LastError, got.Reservation)
					}
				})
			}
		})
	}
}
