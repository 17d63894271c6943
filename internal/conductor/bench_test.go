package conductor_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/driver/fake"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

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

// BenchmarkSyncPowerStates measures one power-sync pass of a conductor over 10,000 nodes with
// the fake power interface (no BMC latency): the conductor's own cost per node.
func BenchmarkSyncPowerStates(b *testing.B) {
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(b.TempDir(), "bench.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	drivers := ironwork.DefaultDriverConfig()
	const nodes = 10000
	for i := range nodes {
		n := &ironwork.Node{Name: fmt.Sprintf("sync-%05d", i), Driver: "fake-hardware", ProvisionState: ironwork.Available,
			PowerState: ironwork.PowerOff}
		if err := drivers.ResolveInterfaces(n); err != nil {
			b.Fatal(err)
		}
		if err := store.CreateNode(ctx, n); err != nil {
			b.Fatal(err)
		}
	}
	if err := store.RegisterConductor(ctx, &ironwork.Conductor{Hostname: "bench", Drivers: []string{"fake-hardware"}}); err != nil {
		b.Fatal(err)
	}
	reg := conductor.Registry{}
	fake.Register(reg)
	cfg := conductor.Defaults()
	cfg.Hostname = "bench"
	c := conductor.New(cfg, store, drivers, reg, nil)
	if err := c.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer c.Stop()
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
	store, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(b.TempDir(), "bench.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	if err := store.RegisterConductor(ctx, &ironwork.Conductor{Hostname: "bench", Drivers: []string{"fake-hardware"}}); err != nil {
		b.Fatal(err)
	}
	drivers := ironwork.DefaultDriverConfig()
	reg := conductor.Registry{}
	fake.Register(reg)
	cfg := conductor.Defaults()
	cfg.Hostname = "bench"
	c := conductor.New(cfg, store, drivers, reg, nil)
	if err := c.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer c.Stop()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		n := &ironwork.Node{Name: fmt.Sprintf("dep-%07d", i), Driver: "fake-hardware", ProvisionState: ironwork.Available}
		if err := drivers.ResolveInterfaces(n); err != nil {
			b.Fatal(err)
		}
		if err := store.CreateNode(ctx, n); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := c.Provision(ctx, n.UUID, conductor.ProvisionRequest{Target: "active"}); err != nil {
			b.Fatal(err)
		}
		c.Wait()
	}
}
