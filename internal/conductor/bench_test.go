package conductor_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/driver/fake"
	"github.com/ironwork/ironwork/internal/driver/ipmi"
	"github.com/ironwork/ironwork/internal/driver/redfish"
	"github.com/ironwork/ironwork/internal/sqlstore"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
	"github.com/ironwork/ironwork/internal/vbmc"
)

// cpuTime returns the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rssKiB reads the resident set size of this process.
func rssKiB() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(line)[1])
			return n
		}
	}
	return 0
}

// benchStore opens a SQLite store in the benchmark's temporary directory, closed at cleanup.
func benchStore(ctx context.Context, b *testing.B) *sqlstore.Store {
	store, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(b.TempDir(), "bench.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	return store
}

// createBenchNode resolves a node's interfaces and stores it.
func createBenchNode(ctx context.Context, b *testing.B, store *sqlstore.Store, drivers ironwork.DriverConfig, n *ironwork.Node) {
	if err := drivers.ResolveInterfaces(n); err != nil {
		b.Fatal(err)
	}
	if err := store.CreateNode(ctx, n); err != nil {
		b.Fatal(err)
	}
}

// startBenchConductor registers conductor "bench" serving hardware type kind and starts it
// with the fake interfaces and those of reg; it stops at cleanup.
func startBenchConductor(ctx context.Context, b *testing.B, store *sqlstore.Store, drivers ironwork.DriverConfig, kind string, reg conductor.Registry) *conductor.Conductor {
	if err := store.RegisterConductor(ctx, &ironwork.Conductor{Hostname: "bench", Drivers: []string{kind}}); err != nil {
		b.Fatal(err)
	}
	fake.Register(reg)
	cfg := conductor.Defaults()
	cfg.Hostname = "bench"
	c := conductor.New(cfg, store, drivers, reg, nil)
	if err := c.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Stop)
	return c
}

// BenchmarkSyncPowerStates measures one power-sync pass of a conductor over 10,000 nodes with
// the fake power interface (no BMC latency): the conductor's own cost per node.
func BenchmarkSyncPowerStates(b *testing.B) {
	ctx := context.Background()
	store := benchStore(ctx, b)
	drivers := ironwork.DefaultDriverConfig()
	const nodes = 10000
	for i := range nodes {
		createBenchNode(ctx, b, store, drivers, &ironwork.Node{Name: fmt.Sprintf("sync-%05d", i), Driver: "fake-hardware",
			ProvisionState: ironwork.Available, PowerState: ironwork.PowerOff})
	}
	c := startBenchConductor(ctx, b, store, drivers, "fake-hardware", conductor.Registry{})
	b.ResetTimer()
	for b.Loop() {
		if err := c.SyncPowerStates(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(nodes)/(b.Elapsed().Seconds()/float64(b.N)), "nodes/s")
	b.ReportMetric(float64(rssKiB())/1024, "RSS-MiB")
}

// BenchmarkDeploy measures taking fake-hardware nodes from available to active through the
// conductor (requests, transitions, steps and history; no HTTP).
func BenchmarkDeploy(b *testing.B) {
	ctx := context.Background()
	store := benchStore(ctx, b)
	drivers := ironwork.DefaultDriverConfig()
	c := startBenchConductor(ctx, b, store, drivers, "fake-hardware", conductor.Registry{})
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		n := &ironwork.Node{Name: fmt.Sprintf("dep-%07d", i), Driver: "fake-hardware", ProvisionState: ironwork.Available}
		createBenchNode(ctx, b, store, drivers, n)
		b.StartTimer()
		if err := c.Provision(ctx, conductor.ProvisionRequest{NodeRef: conductor.NodeRef{Node: n.UUID}, Target: "active"}); err != nil {
			b.Fatal(err)
		}
		c.Wait()
	}
}

// BenchmarkDeployConcurrent measures what bench/api.sh's deploy phase asks of the conductor,
// without HTTP: 16 clients deploy b.N fake-hardware nodes at once, each request followed by
// the background work to active. It reports deploys per minute and the CPU time per deploy.
func BenchmarkDeployConcurrent(b *testing.B) {
	ctx := context.Background()
	store := benchStore(ctx, b)
	drivers := ironwork.DefaultDriverConfig()
	c := startBenchConductor(ctx, b, store, drivers, "fake-hardware", conductor.Registry{})
	uuids := make(chan string, b.N)
	for i := range b.N {
		n := &ironwork.Node{Name: fmt.Sprintf("dep-%07d", i), Driver: "fake-hardware", ProvisionState: ironwork.Available}
		createBenchNode(ctx, b, store, drivers, n)
		uuids <- n.UUID
	}
	close(uuids)
	cpu := cpuTime()
	b.ResetTimer()
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for u := range uuids {
				if err := c.Provision(ctx, conductor.ProvisionRequest{NodeRef: conductor.NodeRef{Node: u}, Target: "active"}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	c.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Minutes(), "deploys/min")
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/1000/float64(b.N), "CPU-ms/op")
}

// BenchmarkSyncPowerStatesRedfish measures one power-sync pass over 10,000 redfish nodes whose
// BMCs are simulated by ironwork vbmc's Redfish service (one HTTP service on loopback, one
// system per node; every node costs a service-root and a system GET over real HTTP).
func BenchmarkSyncPowerStatesRedfish(b *testing.B) {
	benchSyncBMC(b, 10000, "redfish")
}

// BenchmarkSyncPowerStatesIPMI does the same over 1,000 ipmi nodes, each with its own
// simulated IPMI 2.0 BMC (a UDP port, an RMCP+ session per read).
func BenchmarkSyncPowerStatesIPMI(b *testing.B) {
	benchSyncBMC(b, 1000, "ipmi")
}

func benchSyncBMC(b *testing.B, nodes int, kind string) {
	ctx := context.Background()
	cfg := vbmc.Config{Username: "admin", Password: "password"}
	if kind == "redfish" {
		cfg.RedfishListen = "127.0.0.1:0"
	}
	for i := range nodes {
		m := vbmc.MachineConfig{Name: fmt.Sprintf("m%05d", i), Command: []string{"true"}}
		if kind == "ipmi" {
			m.IPMIListen = "127.0.0.1:0"
		}
		cfg.Machines = append(cfg.Machines, m)
	}
	v, err := vbmc.Start(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	vctx, cancel := context.WithCancel(ctx)
	go v.Serve(vctx)
	b.Cleanup(func() { cancel(); v.Close() })

	store := benchStore(ctx, b)
	drivers := ironwork.DefaultDriverConfig()
	for i := range nodes {
		name := fmt.Sprintf("m%05d", i)
		n := &ironwork.Node{Name: name, ProvisionState: ironwork.Available, PowerState: ironwork.PowerOff}
		if kind == "redfish" {
			n.Driver = "redfish"
			n.DriverInfo = ironwork.JSONObject{"redfish_address": v.RedfishURL, "redfish_system_id": "/redfish/v1/Systems/" + name,
				"redfish_username": "admin", "redfish_password": "password"}
		} else {
			host, port, _ := strings.Cut(v.IPMIAddrs[name], ":")
			n.Driver = "ipmi"
			n.DriverInfo = ironwork.JSONObject{"ipmi_address": host, "ipmi_port": port, "ipmi_username": "admin",
				"ipmi_password": "password", "ipmi_cipher_suite": "3"}
		}
		createBenchNode(ctx, b, store, drivers, n)
	}
	reg := conductor.Registry{}
	reg.Add(ironwork.PowerInterface, "redfish", redfish.Interface{})
	reg.Add(ironwork.ManagementInterface, "redfish", redfish.Interface{})
	sessions := ipmi.NewSessions()
	b.Cleanup(sessions.Close)
	reg.Add(ironwork.PowerInterface, "ipmitool", ipmi.Interface{Sessions: sessions})
	reg.Add(ironwork.ManagementInterface, "ipmitool", ipmi.Interface{Sessions: sessions})
	c := startBenchConductor(ctx, b, store, drivers, kind, reg)
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		if err := c.SyncPowerStates(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "CPU-s/pass")
	if n, _ := store.GetNode(ctx, "m00000"); n.Maintenance {
		b.Fatalf("node went into maintenance during the benchmark: %s", n.MaintenanceReason)
	}
	perPass := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(nodes)/perPass, "nodes/s")
	b.ReportMetric(float64(nodes)/perPass*60, "nodes/60s")
	b.ReportMetric(float64(rssKiB())/1024, "RSS-MiB")
}

// BenchmarkSyncPowerStatesShare measures one power-sync pass of one of four conductors over a
// fleet of 40,000 fake-hardware nodes, on SQLite and (with $IRONWORK_TEST_POSTGRES) on
// PostgreSQL: the pass reads the conductor's quarter, found through the nodes' stored ring keys
// (before migration 0022, by reading and hashing every node's key). It reports the nodes of
// its share synced per second.
func BenchmarkSyncPowerStatesShare(b *testing.B) {
	for _, target := range []string{"sqlite", "postgres"} {
		b.Run(target, func(b *testing.B) {
			ctx := context.Background()
			dsn := "sqlite://" + filepath.Join(b.TempDir(), "bench.db")
			if target == "postgres" {
				if os.Getenv("IRONWORK_TEST_POSTGRES") == "" {
					b.Skip("IRONWORK_TEST_POSTGRES is not set")
				}
				dsn = sqlstoretest.PostgresDSN(b)
			}
			store, err := sqlstore.Open(ctx, dsn, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { store.Close() })
			drivers := ironwork.DefaultDriverConfig()
			const fleet, writers = 40000, 8
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for i := w; i < fleet; i += writers {
						createBenchNode(ctx, b, store, drivers, &ironwork.Node{Name: fmt.Sprintf("share-%05d", i), Driver: "fake-hardware",
							ProvisionState: ironwork.Available, PowerState: ironwork.PowerOff})
					}
				})
			}
			wg.Wait()
			for _, h := range []string{"peer-1", "peer-2", "peer-3"} {
				if err := store.RegisterConductor(ctx, &ironwork.Conductor{Hostname: h, Drivers: []string{"fake-hardware"}}); err != nil {
					b.Fatal(err)
				}
			}
			c := startBenchConductor(ctx, b, store, drivers, "fake-hardware", conductor.Registry{})
			if _, err := conductor.RefreshRing(ctx, store, c.Ring(), time.Hour, c.Hostname()); err != nil {
				b.Fatal(err)
			}
			share := c.Ring().Share("", c.Hostname())
			b.ResetTimer()
			for b.Loop() {
				if err := c.SyncPowerStates(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(share*fleet/(b.Elapsed().Seconds()/float64(b.N)), "nodes/s")
		})
	}
}
