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
	req.NodeRef = conductor.NodeRef{Node: node}
	return c.Provision(context.Background(), req)
}

func withCleanSteps(steps ...conductor.StepRequest) func(r *conductor.ProvisionRequest) {
	return func(r *conductor.ProvisionRequest) { r.CleanSteps = steps }
}

func withDeploySteps(steps ...conductor.StepRequest) func(r *conductor.ProvisionRequest) {
	return func(r *conductor.ProvisionRequest) { r.DeploySteps = steps }
}

func withServiceSteps(steps ...conductor.StepRequest) func(r *conductor.ProvisionRequest) {
	return func(r *conductor.ProvisionRequest) { r.ServiceSteps = steps }
}

func withRescuePassword(p string) func(r *conductor.ProvisionRequest) {
	return func(r *conductor.ProvisionRequest) { r.RescuePassword = p }
}

func withConfigDrive(cd *conductor.ConfigDrive) func(r *conductor.ProvisionRequest) {
	return func(r *conductor.ProvisionRequest) { r.ConfigDrive = cd }
}

func resume(t *testing.T, c *conductor.Conductor, node string) error {
	t.Helper()
	return c.Resume(context.Background(), node)
}

func heartbeat(t *testing.T, c *conductor.Conductor, node string, hb conductor.Heartbeat) error {
	t.Helper()
	return c.AgentHeartbeat(context.Background(), conductor.HeartbeatRequest{NodeRef: ref(node), Heartbeat: hb})
}

// issueToken looks the node's agent up, as GET /v1/lookup does, and returns the token it got.
func issueToken(t *testing.T, c *conductor.Conductor, node string) string {
	t.Helper()
	l, err := c.LookupAgent(context.Background(), ref(node))
	if err != nil {
		t.Fatalf("look up agent: %v", err)
	}
	return l.Token
}

func ref(node string) conductor.NodeRef { return conductor.NodeRef{Node: node} }

func setPower(t *testing.T, c *conductor.Conductor, node string, target ironwork.PowerState) error {
	t.Helper()
	return c.SetPower(context.Background(), conductor.SetPowerRequest{NodeRef: ref(node), Target: target})
}

func bootDevice(t *testing.T, c *conductor.Conductor, node string) (conductor.BootDevice, error) {
	t.Helper()
	return c.BootDevice(context.Background(), ref(node))
}

func supportedBootDevices(t *testing.T, c *conductor.Conductor, node string) ([]string, error) {
	t.Helper()
	return c.SupportedBootDevices(context.Background(), ref(node))
}

func setBootDevice(t *testing.T, c *conductor.Conductor, node string, dev conductor.BootDevice) error {
	t.Helper()
	return c.SetBootDevice(context.Background(), conductor.SetBootDeviceRequest{NodeRef: ref(node), Device: dev})
}

func injectNMI(t *testing.T, c *conductor.Conductor, node string) error {
	t.Helper()
	return c.InjectNMI(context.Background(), ref(node))
}

func setBootMode(t *testing.T, c *conductor.Conductor, node, mode string) error {
	t.Helper()
	return c.SetBootMode(context.Background(), conductor.SetBootModeRequest{NodeRef: ref(node), Mode: mode})
}

func setSecureBoot(t *testing.T, c *conductor.Conductor, node string, on bool) error {
	t.Helper()
	return c.SetSecureBoot(context.Background(), conductor.SetSecureBootRequest{NodeRef: ref(node), On: on})
}

func setTargetRAID(t *testing.T, c *conductor.Conductor, node string, cfg ironwork.JSONObject) error {
	t.Helper()
	return c.SetTargetRAID(context.Background(), conductor.SetTargetRAIDRequest{NodeRef: ref(node), Config: cfg})
}

func setMaintenance(t *testing.T, c *conductor.Conductor, node string, on bool, reason string) error {
	t.Helper()
	return c.SetMaintenance(context.Background(), conductor.SetMaintenanceRequest{NodeRef: ref(node), On: on, Reason: reason})
}

func validate(t *testing.T, c *conductor.Conductor, node string) (map[ironwork.InterfaceKind]conductor.ValidationResult, error) {
	t.Helper()
	return c.Validate(context.Background(), ref(node))
}

func withNode(t *testing.T, c *conductor.Conductor, node string, fn func(t *conductor.Task) error) error {
	t.Helper()
	return c.WithNode(context.Background(), node, fn)
}

func attachVIF(t *testing.T, c *conductor.Conductor, node string, vif conductor.VIF) error {
	t.Helper()
	return c.AttachVIF(context.Background(), conductor.AttachVIFRequest{NodeRef: ref(node), VIF: vif})
}

func detachVIF(t *testing.T, c *conductor.Conductor, node, id string) error {
	t.Helper()
	return c.DetachVIF(context.Background(), conductor.DetachVIFRequest{NodeRef: ref(node), VIF: id})
}

func listVIFs(t *testing.T, c *conductor.Conductor, node string) ([]conductor.VIF, error) {
	t.Helper()
	return c.ListVIFs(context.Background(), ref(node))
}

func createAllocation(t *testing.T, c *conductor.Conductor, a *ironwork.Allocation, backfill string) (*ironwork.Allocation, error) {
	t.Helper()
	return c.CreateAllocation(context.Background(), conductor.CreateAllocationRequest{Allocation: a, BackfillNode: backfill})
}

func deleteAllocation(t *testing.T, c *conductor.Conductor, ident string) error {
	t.Helper()
	return c.DeleteAllocation(context.Background(), conductor.DeleteAllocationRequest{Allocation: ident})
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

func takeOvers(t *testing.T, c *conductor.Conductor) error {
	t.Helper()
	return c.TakeOvers(context.Background())
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

func continueInspection(t *testing.T, c *conductor.Conductor, node string, inventory, plugin string) (conductor.InspectionResult, error) {
	t.Helper()
	req := conductor.ContinueInspectionRequest{NodeRef: ref(node), Inventory: []byte(inventory)}
	if plugin != "" {
		req.PluginData = []byte(plugin)
	}
	return c.ContinueInspection(context.Background(), req)
}

func discover(t *testing.T, c *conductor.Conductor, inventory string) (conductor.InspectionResult, error) {
	t.Helper()
	return c.Discover(context.Background(), conductor.DiscoverRequest{Inventory: []byte(inventory)})
}

func setConsole(t *testing.T, c *conductor.Conductor, node string, on bool) error {
	t.Helper()
	return c.SetConsoleMode(context.Background(), conductor.SetConsoleRequest{NodeRef: ref(node), Enabled: on})
}

func consoleInfo(t *testing.T, c *conductor.Conductor, node string) (conductor.ConsoleInfo, error) {
	t.Helper()
	return c.ConsoleInfo(context.Background(), ref(node))
}

func stopConsole(t *testing.T, c *conductor.Conductor, node string) error {
	t.Helper()
	return c.StopConsole(context.Background(), ref(node))
}

func syncConsoles(t *testing.T, c *conductor.Conductor) error {
	t.Helper()
	return c.SyncConsoles(context.Background())
}
