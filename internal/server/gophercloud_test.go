package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/apiversions"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/noauth"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/conductors"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/drivers"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/ports"
	"github.com/gophercloud/gophercloud/v2/pagination"

	"github.com/ironwork/ironwork/internal/server"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

// startServer boots the whole server on a free loopback port with the given database and
// stops it when the test ends.
func startServer(t testing.TB, dsn string, mutate ...func(*server.Config)) *server.Server {
	t.Helper()
	return startServerLog(t, dsn, slog.New(slog.NewTextHandler(io.Discard, nil)), mutate...)
}

// startServerLog is startServer with the server's log going to log.
func startServerLog(t testing.TB, dsn string, log *slog.Logger, mutate ...func(*server.Config)) *server.Server {
	t.Helper()
	cfg := server.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.Database = dsn
	cfg.Hostname = "test-conductor"
	for _, m := range mutate {
		m(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.Start(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("start server: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("server did not stop within 15 s")
		}
		srv.Close()
	})
	return srv
}

func gopherClient(t *testing.T, srv *server.Server, microversion string) *gophercloud.ServiceClient {
	t.Helper()
	c, err := noauth.NewBareMetalNoAuth(noauth.EndpointOpts{IronicEndpoint: srv.URL() + "/v1/"})
	if err != nil {
		t.Fatal(err)
	}
	c.Microversion = microversion
	return c
}

func wantStatus(t *testing.T, err error, status int) {
	t.Helper()
	if !gophercloud.ResponseCodeIs(err, status) {
		t.Fatalf("error = %v, want HTTP %d", err, status)
	}
}

func TestGophercloud(t *testing.T) {
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, target.DSN(t))
			ctx := context.Background()
			c := gopherClient(t, srv, "1.87")

			t.Run("apiversions", func(t *testing.T) {
				// apiversions reads the version documents relative to the service root.
				root, err := noauth.NewBareMetalNoAuth(noauth.EndpointOpts{IronicEndpoint: srv.URL() + "/"})
				if err != nil {
					t.Fatal(err)
				}
				vs, err := apiversions.List(ctx, root).Extract()
				if err != nil {
					t.Fatal(err)
				}
				if vs.DefaultVersion.ID != "v1" || vs.DefaultVersion.MinVersion != "1.1" || vs.DefaultVersion.Version == "" {
					t.Fatalf("versions: %+v", vs)
				}
				v, err := apiversions.Get(ctx, root, "v1").Extract()
				if err != nil || v.Version != vs.DefaultVersion.Version {
					t.Fatalf("v1: %+v %v", v, err)
				}
			})

			var node *nodes.Node
			t.Run("nodes", func(t *testing.T) {
				var err error
				node, err = nodes.Create(ctx, c, nodes.CreateOpts{
					Name: "gc-node-1", Driver: "fake-hardware", ResourceClass: "baremetal",
					DriverInfo: map[string]any{"ipmi_address": "192.0.2.10", "ipmi_password": "hunter2"},
					Properties: map[string]any{"cpus": 8, "memory_mb": 16384, "cpu_arch": "x86_64"},
				}).Extract()
				if err != nil {
					t.Fatal(err)
				}
				if node.ProvisionState != "enroll" || node.DriverInfo["ipmi_password"] != "******" ||
					node.DriverInfo["ipmi_address"] != "192.0.2.10" || node.PowerInterface != "fake" || node.NetworkInterface == "" {
					t.Fatalf("created node: %+v", node)
				}
				got, err := nodes.Get(ctx, c, "gc-node-1").Extract()
				if err != nil || got.UUID != node.UUID || got.Properties["cpus"] != float64(8) {
					t.Fatalf("get by name: %+v %v", got, err)
				}
				up, err := nodes.Update(ctx, c, node.UUID, nodes.UpdateOpts{
					nodes.UpdateOperation{Op: nodes.AddOp, Path: "/properties/local_gb", Value: 100},
					nodes.UpdateOperation{Op: nodes.ReplaceOp, Path: "/name", Value: "gc-node-renamed"},
					nodes.UpdateOperation{Op: nodes.RemoveOp, Path: "/properties/cpu_arch"},
					nodes.UpdateOperation{Op: nodes.AddOp, Path: "/extra/rack", Value: "r12"},
				}).Extract()
				if err != nil {
					t.Fatal(err)
				}
				if up.Name != "gc-node-renamed" || up.Properties["local_gb"] != float64(100) || up.Properties["cpu_arch"] != nil ||
					up.Extra["rack"] != "r12" || up.DriverInfo["ipmi_password"] != "******" {
					t.Fatalf("updated node: %+v", up)
				}
				_, err = nodes.Update(ctx, c, node.UUID, nodes.UpdateOpts{
					nodes.UpdateOperation{Op: nodes.ReplaceOp, Path: "/provision_state", Value: "active"},
				}).Extract()
				wantStatus(t, err, http.StatusBadRequest)
				_, err = nodes.Create(ctx, c, nodes.CreateOpts{Name: "gc-node-renamed", Driver: "fake-hardware"}).Extract()
				wantStatus(t, err, http.StatusConflict)
				_, err = nodes.Get(ctx, c, "no-such-node").Extract()
				wantStatus(t, err, http.StatusNotFound)

				pages, err := nodes.List(c, nodes.ListOpts{Maintenance: true}).AllPages(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if list, _ := nodes.ExtractNodes(pages); len(list) != 0 {
					t.Fatalf("maintenance filter returned %d nodes", len(list))
				}
			})

			t.Run("ports", func(t *testing.T) {
				yes := true
				p, err := ports.Create(ctx, c, ports.CreateOpts{NodeUUID: node.UUID, Address: "52:54:00:AB:CD:01", PXEEnabled: &yes}).Extract()
				if err != nil {
					t.Fatal(err)
				}
				if p.Address != "52:54:00:ab:cd:01" || p.NodeUUID != node.UUID || !p.PXEEnabled {
					t.Fatalf("created port: %+v", p)
				}
				_, err = ports.Create(ctx, c, ports.CreateOpts{NodeUUID: node.UUID, Address: "52:54:00:ab:cd:01"}).Extract()
				wantStatus(t, err, http.StatusConflict)
				_, err = ports.Create(ctx, c, ports.CreateOpts{NodeUUID: node.UUID, Address: "not-a-mac"}).Extract()
				wantStatus(t, err, http.StatusBadRequest)
				pages, err := ports.ListDetail(c, ports.ListOpts{Node: "gc-node-renamed"}).AllPages(ctx)
				if err != nil {
					t.Fatal(err)
				}
				list, _ := ports.ExtractPorts(pages)
				if len(list) != 1 || list[0].UUID != p.UUID {
					t.Fatalf("ports of node: %+v", list)
				}
				up, err := ports.Update(ctx, c, p.UUID, ports.UpdateOpts{
					ports.UpdateOperation{Op: ports.AddOp, Path: "/extra/switch", Value: "sw1"},
					ports.UpdateOperation{Op: ports.ReplaceOp, Path: "/pxe_enabled", Value: false},
				}).Extract()
				if err != nil || up.Extra["switch"] != "sw1" || up.PXEEnabled {
					t.Fatalf("updated port: %+v %v", up, err)
				}
				if err := ports.Delete(ctx, c, p.UUID).ExtractErr(); err != nil {
					t.Fatal(err)
				}
				_, err = ports.Get(ctx, c, p.UUID).Extract()
				wantStatus(t, err, http.StatusNotFound)
			})

			t.Run("drivers and conductors", func(t *testing.T) {
				pages, err := drivers.ListDrivers(c, drivers.ListDriversOpts{Detail: true}).AllPages(ctx)
				if err != nil {
					t.Fatal(err)
				}
				ds, _ := drivers.ExtractDrivers(pages)
				names := map[string]bool{}
				for _, d := range ds {
					names[d.Name] = true
					if len(d.Hosts) != 1 || d.Hosts[0] != "test-conductor" {
						t.Errorf("driver %s hosts = %v", d.Name, d.Hosts)
					}
				}
				for _, want := range []string{"fake-hardware", "ipmi", "redfish", "manual-management"} {
					if !names[want] {
						t.Errorf("driver %s missing from %v", want, names)
					}
				}
				d, err := drivers.GetDriverDetails(ctx, c, "ipmi").Extract()
				if err != nil || d.DefaultPowerInterface != "ipmitool" || d.DefaultManagementInterface != "ipmitool" {
					t.Fatalf("ipmi details: %+v %v", d, err)
				}
				props, err := drivers.GetDriverProperties(ctx, c, "ipmi").Extract()
				if err != nil || (*props)["ipmi_address"] == "" {
					t.Fatalf("ipmi properties: %v %v", props, err)
				}
				_, err = drivers.GetDriverDetails(ctx, c, "no-such-driver").Extract()
				wantStatus(t, err, http.StatusNotFound)

				cpages, err := conductors.List(c, conductors.ListOpts{Detail: true}).AllPages(ctx)
				if err != nil {
					t.Fatal(err)
				}
				cs, _ := conductors.ExtractConductors(cpages)
				if len(cs) != 1 || cs[0].Hostname != "test-conductor" || !cs[0].Alive {
					t.Fatalf("conductors: %+v", cs)
				}
				one, err := conductors.Get(ctx, c, "test-conductor").Extract()
				if err != nil || !one.Alive || len(one.Drivers) == 0 {
					t.Fatalf("conductor: %+v %v", one, err)
				}
			})

			t.Run("paging past 1000 nodes", func(t *testing.T) {
				const extra = 1100
				var wg sync.WaitGroup
				errs := make(chan error, extra)
				sem := make(chan struct{}, 8)
				for i := range extra {
					wg.Add(1)
					sem <- struct{}{}
					go func() {
						defer wg.Done()
						defer func() { <-sem }()
						_, err := nodes.Create(ctx, c, nodes.CreateOpts{Name: fmt.Sprintf("bulk-%04d", i), Driver: "fake-hardware"}).Extract()
						if err != nil {
							errs <- err
						}
					}()
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Fatal(err)
				}
				for _, limit := range []int{0, 333} {
					pager := nodes.ListDetail(c, nodes.ListOpts{Limit: limit})
					seen := map[string]bool{}
					pageCount := 0
					err := pager.EachPage(ctx, func(_ context.Context, page pagination.Page) (bool, error) {
						list, err := nodes.ExtractNodes(page)
						if err != nil {
							return false, err
						}
						pageCount++
						for _, n := range list {
							if seen[n.UUID] {
								return false, errors.New("node listed twice: " + n.UUID)
							}
							seen[n.UUID] = true
						}
						return pageCount < 20, nil
					})
					if err != nil {
						t.Fatal(err)
					}
					if len(seen) != extra+1 {
						t.Fatalf("limit %d: paged through %d nodes in %d pages, want %d", limit, len(seen), pageCount, extra+1)
					}
				}
			})

			t.Run("delete", func(t *testing.T) {
				if err := nodes.Delete(ctx, c, node.UUID).ExtractErr(); err != nil {
					t.Fatal(err)
				}
				_, err := nodes.Get(ctx, c, node.UUID).Extract()
				wantStatus(t, err, http.StatusNotFound)
				if !strings.Contains(fmt.Sprint(err), "could not be found") {
					t.Errorf("404 message: %v", err)
				}
			})
		})
	}
}
