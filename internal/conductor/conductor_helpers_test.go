package conductor_test

// Every call to a *Conductor method (and the package's exported functions) in this package's
// tests goes through one of these helpers, so that a change of the methods' signatures is a
// change of this file only.

import (
	"context"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

func start(t *testing.T, c *conductor.Conductor) error {
	t.Helper()
	return c.Start(context.Background())
}

// provision asks for a provision action; more fills in the rest of the request.
func provision(t *testing.T, c *conductor.Conductor, node, target string, more ...func(r *conductor.ProvisionRequest)) error {
	t.Helper()
	req := conductor.ProvisionRequest{Target: target}
	for _, m := range more {
		m(&req)
	}
	return c.Provision(context.Background(), node, req)
}

func withCleanSteps(steps ...any) func(r *conductor.ProvisionRequest) {
	return func(r *conductor.ProvisionRequest) { r.CleanSteps = steps }
}

func withDeploySteps(steps ...any) func(r *conductor.ProvisionRequest) {
	return func(r *conductor.ProvisionRequest) { r.DeploySteps = steps }
}

func withServiceSteps(steps ...any) func(r *conductor.ProvisionRequest) {
	return func(r *conductor.ProvisionRequest) { r.ServiceSteps = steps }
}

func withRescuePassword(p string) func(r *conductor.ProvisionRequest) {
	return func(r *conductor.ProvisionRequest) { r.RescuePassword = p }
}

func withConfigDrive(cd any) func(r *conductor.ProvisionRequest) {
	return func(r *conductor.ProvisionRequest) { r.ConfigDrive = cd }
}

func resume(t *testing.T, c *conductor.Conductor, node string) error {
	t.Helper()
	return c.Resume(context.Background(), node)
}

func heartbeat(t *testing.T, c *conductor.Conductor, node string, hb conductor.Heartbeat) error {
	t.Helper()
	return c.AgentHeartbeat(context.Background(), node, hb)
}

func issueToken(t *testing.T, store *sqlstore.Store, node string) string {
	t.Helper()
	tok, _, err := conductor.IssueAgentToken(context.Background(), store, node)
	if err != nil {
		t.Fatalf("issue agent token: %v", err)
	}
	return tok
}

func setPower(t *testing.T, c *conductor.Conductor, node string, target ironwork.PowerState) error {
	t.Helper()
	return c.SetPower(context.Background(), node, target, 0)
}

func bootDevice(t *testing.T, c *conductor.Conductor, node string) (conductor.BootDevice, error) {
	t.Helper()
	return c.BootDevice(context.Background(), node)
}

func supportedBootDevices(t *testing.T, c *conductor.Conductor, node string) ([]string, error) {
	t.Helper()
	return c.SupportedBootDevices(context.Background(), node)
}

func setBootDevice(t *testing.T, c *conductor.Conductor, node string, dev conductor.BootDevice) error {
	t.Helper()
	return c.SetBootDevice(context.Background(), node, dev)
}

func injectNMI(t *testing.T, c *conductor.Conductor, node string) error {
	t.Helper()
	return c.InjectNMI(context.Background(), node)
}

func setBootMode(t *testing.T, c *conductor.Conductor, node, mode string) error {
	t.Helper()
	return c.SetBootMode(context.Background(), node, mode)
}

func setSecureBoot(t *testing.T, c *conductor.Conductor, node string, on bool) error {
	t.Helper()
	return c.SetSecureBoot(context.Background(), node, on)
}

func setTargetRAID(t *testing.T, c *conductor.Conductor, node string, cfg ironwork.JSONObject) error {
	t.Helper()
	return c.SetTargetRAID(context.Background(), node, cfg)
}

func setMaintenance(t *testing.T, c *conductor.Conductor, node string, on bool, reason string) error {
	t.Helper()
	return c.SetMaintenance(context.Background(), node, on, reason)
}

func validate(t *testing.T, c *conductor.Conductor, node string) (map[ironwork.InterfaceKind]conductor.ValidationResult, error) {
	t.Helper()
	return c.Validate(context.Background(), node)
}

func withNode(t *testing.T, c *conductor.Conductor, node string, fn func(t *conductor.Task) error) error {
	t.Helper()
	return c.WithNode(context.Background(), node, fn)
}

func attachVIF(t *testing.T, c *conductor.Conductor, node string, vif conductor.VIF) error {
	t.Helper()
	return c.AttachVIF(context.Background(), node, vif)
}

func detachVIF(t *testing.T, c *conductor.Conductor, node, id string) error {
	t.Helper()
	return c.DetachVIF(context.Background(), node, id)
}

func listVIFs(t *testing.T, c *conductor.Conductor, node string) ([]conductor.VIF, error) {
	t.Helper()
	return c.ListVIFs(context.Background(), node)
}

func createAllocation(t *testing.T, c *conductor.Conductor, a *ironwork.Allocation, backfill string) (*ironwork.Allocation, error) {
	t.Helper()
	return c.CreateAllocation(context.Background(), a, backfill)
}

func deleteAllocation(t *testing.T, c *conductor.Conductor, ident string) error {
	t.Helper()
	return c.DeleteAllocation(context.Background(), ident)
}

func syncPower(t *testing.T, c *conductor.Conductor) error {
	t.Helper()
	return c.SyncPowerStates(context.Background())
}

func checkTimeouts(t *testing.T, c *conductor.Conductor) error {
	t.Helper()
	return c.CheckTimeouts(context.Background())
}

func takeOverDead(t *testing.T, c *conductor.Conductor) error {
	t.Helper()
	return c.TakeOverDead(context.Background())
}

func takeOverActive(t *testing.T, c *conductor.Conductor) error {
	t.Helper()
	return c.TakeOverActive(context.Background())
}

// refreshRing rebuilds a conductor's ring from the conductors alive in store.
func refreshRing(t *testing.T, c *conductor.Conductor, store *sqlstore.Store) {
	t.Helper()
	if _, err := conductor.RefreshRing(context.Background(), store, c.Ring(), time.Minute, c.Hostname()); err != nil {
		t.Fatalf("refresh ring: %v", err)
	}
}
