package redfish

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/driver/fake"
	"github.com/ironwork/ironwork/internal/sqlstore"
	"github.com/ironwork/ironwork/internal/vbmc"
)

func gib(n int64) int64 { return n << 30 }

// TestPlanVolumes places logical disks on drives, or says why they do not fit.
func TestPlanVolumes(t *testing.T) {
	ctrl := func(sizes ...int64) rfStorage {
		s := rfStorage{URI: "/s/0", ID: "0", Name: "RAID ctrl", VolumesURI: "/s/0/Volumes"}
		for i, size := range sizes {
			id := string(rune('a' + i))
			s.Drives = append(s.Drives, rfDrive{URI: "/s/0/Drives/" + id, ID: id, Size: gib(size), MediaType: "HDD", Protocol: "SAS"})
		}
		return s
	}
	for _, tc := range []struct {
		name   string
		st     []rfStorage
		disks  []ironwork.LogicalDisk
		keep   bool
		drives [][]string
		sizes  []int64
		err    string
	}{
		{name: "mirror on the smallest drives that hold it", st: []rfStorage{ctrl(2, 8, 4, 4)},
			disks:  []ironwork.LogicalDisk{{RAIDLevel: "1", SizeGB: 3}},
			drives: [][]string{{"c", "d"}}, sizes: []int64{gib(3)}},
		{name: "MAX takes the largest and goes last", st: []rfStorage{ctrl(2, 8, 8, 4, 4)},
			disks:  []ironwork.LogicalDisk{{RAIDLevel: "0", SizeMax: true, NumberOfPhysicalDisks: 2}, {RAIDLevel: "1", SizeGB: 4}},
			drives: [][]string{{"b", "c"}, {"d", "e"}}, sizes: []int64{gib(16), gib(4)}},
		{name: "named drives", st: []rfStorage{ctrl(4, 4, 4)},
			disks:  []ironwork.LogicalDisk{{RAIDLevel: "1", SizeGB: 1, Controller: "RAID ctrl", PhysicalDisks: []any{"a", "c"}}},
			drives: [][]string{{"a", "c"}}, sizes: []int64{gib(1)}},
		{name: "too big", st: []rfStorage{ctrl(4, 4)}, disks: []ironwork.LogicalDisk{{RAIDLevel: "1", SizeGB: 5}},
			err: "logical disk 0 (RAID 1, 5 GiB, 2 physical disks) does not fit: controller 0: RAID 1 over 2 of its free drives holds at most 4 GiB"},
		{name: "too few drives", st: []rfStorage{ctrl(4, 4)}, disks: []ironwork.LogicalDisk{{RAIDLevel: "5", SizeGB: 1}},
			err: "controller 0 has 2 free drives that match (0 of its 2 drives"},
		{name: "drives in kept volumes", st: []rfStorage{func() rfStorage {
			s := ctrl(4, 4, 4)
			s.Volumes = []rfVolume{{URI: "/s/0/Volumes/1", Drives: []string{"/s/0/Drives/a", "/s/0/Drives/b"}}}
			return s
		}()}, keep: true, disks: []ironwork.LogicalDisk{{RAIDLevel: "1", SizeGB: 1}},
			err: "controller 0 has 1 free drives that match (2 of its 3 drives are in volumes"},
		{name: "disk type", st: []rfStorage{ctrl(4, 4)}, disks: []ironwork.LogicalDisk{{RAIDLevel: "1", SizeGB: 1, DiskType: "ssd"}},
			err: "has 0 free drives that match"},
		{name: "unknown controller", st: []rfStorage{ctrl(4, 4)}, disks: []ironwork.LogicalDisk{{RAIDLevel: "1", SizeGB: 1, Controller: "nope"}},
			err: `logical disk 0: no Storage controller "nope" on the BMC`},
		{name: "unknown named drive", st: []rfStorage{ctrl(4, 4)},
			disks: []ironwork.LogicalDisk{{RAIDLevel: "1", SizeGB: 1, Controller: "0", PhysicalDisks: []any{"a", "z"}}},
			err:   "logical disk 0: physical disk z is not a free drive of controller 0"},
		{name: "three disks for a mirror", st: []rfStorage{ctrl(4, 4, 4)}, disks: []ironwork.LogicalDisk{{RAIDLevel: "1", SizeGB: 1, NumberOfPhysicalDisks: 3}},
			err: "logical disk 0: RAID 1 takes 2 to 2 physical disks, not 3"},
		{name: "no volumes", st: []rfStorage{{ID: "x", Drives: []rfDrive{{URI: "d"}}}}, disks: []ironwork.LogicalDisk{{RAIDLevel: "0", SizeGB: 1}},
			err: "controller x has no Volumes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := planVolumes(tc.st, tc.disks, tc.keep)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || ironwork.ErrorCode(err) != ironwork.EINVALID {
					t.Fatalf("error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range plan {
				var ids []string
				for _, d := range p.drives {
					ids = append(ids, d.ID)
				}
				if strings.Join(ids, ",") != strings.Join(tc.drives[i], ",") || p.size != tc.sizes[i] {
					t.Errorf("volume %d on %v, %d bytes; want %v, %d", i, ids, p.size, tc.drives[i], tc.sizes[i])
				}
			}
		})
	}
}

func TestRAIDValidate(t *testing.T) {
	tk := task(ironwork.JSONObject{"redfish_address": "http://127.0.0.1:1"})
	if err := (RAID{}).Validate(context.Background(), tk); err != nil {
		t.Fatalf("no target: %v", err)
	}
	tk.Node.TargetRAIDConfig = ironwork.JSONObject{"logical_disks": []any{map[string]any{"size_gb": 1.0, "raid_level": "1", "controller": "software"}}}
	if err := (RAID{}).Validate(context.Background(), tk); err == nil || !strings.Contains(err.Error(), "use the agent raid interface") {
		t.Fatalf("software target: %v", err)
	}
	if err := (RAID{}).Validate(context.Background(), task(ironwork.JSONObject{})); err == nil || !strings.Contains(err.Error(), "redfish_address") {
		t.Fatalf("no address: %v", err)
	}
}

// TestRAIDAgainstTheDMTFMockup: DMTF's public-rackmount1 system has SimpleStorage and no
// Storage, so it has no volumes to build: create_configuration says so.
func TestRAIDAgainstTheDMTFMockup(t *testing.T) {
	_, info := newBMC(t)
	tk := task(info)
	tk.Node.TargetRAIDConfig = ironwork.JSONObject{"logical_disks": []any{map[string]any{"size_gb": 10.0, "raid_level": "1"}}}
	_, err := RAID{}.RunStep(context.Background(), tk, conductor.Step{Name: "create_configuration"})
	if err == nil || !strings.Contains(err.Error(), "system "+system+" has no Storage") {
		t.Fatalf("error = %v", err)
	}
}

// raidFixture is a conductor on SQLite whose redfish nodes use the real redfish raid
// interface, and an `ironwork vbmc` machine with three disk files (8, 8 and 4 GiB) behind an
// optional front that turns volume POSTs and DELETEs into Redfish tasks.
type raidFixture struct {
	store *sqlstore.Store
	cond  *conductor.Conductor
	vbmc  *vbmc.VBMC
	url   string // where the node's BMC is: the vbmc, or the task front
}

func newRAIDFixture(t *testing.T, taskFront func(v *vbmc.VBMC) string) *raidFixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	cmd := []string{"sh", "-c", "exec sleep 300", "vm"}
	for i, size := range []int64{8 << 30, 8 << 30, 4 << 30} {
		p := filepath.Join(dir, fmt.Sprintf("disk%d", i))
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
		cmd = append(cmd, "-drive", "file="+p+",if=virtio,format=raw")
	}
	v, err := vbmc.Start(vbmc.Config{Username: "admin", Password: "password", RedfishListen: "127.0.0.1:0",
		Machines: []vbmc.MachineConfig{{Name: "vm1", Command: cmd}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	vctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { v.Serve(vctx); close(done) }()
	t.Cleanup(func() { cancel(); v.Close(); <-done })
	store, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(dir, "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	reg := conductor.Registry{}
	fake.Register(reg)
	rf := Interface{PollInterval: 20 * time.Millisecond, RequestTimeout: 30 * time.Second, ConnectionAttempts: 1}
	reg.Add(ironwork.PowerInterface, "redfish", rf)
	reg.Add(ironwork.ManagementInterface, "redfish", rf)
	reg.Add(ironwork.RAIDInterface, "redfish", RAID{Interface: rf, TaskTimeout: 30 * time.Second})
	if err := store.RegisterConductor(ctx, &ironwork.Conductor{Hostname: "c1", Drivers: []string{"fake-hardware", "redfish"}}); err != nil {
		t.Fatal(err)
	}
	f := &raidFixture{store: store, cond: conductor.New(conductor.Config{Hostname: "c1"}, store, ironwork.DefaultDriverConfig(), reg, nil), vbmc: v, url: v.RedfishURL}
	if taskFront != nil {
		f.url = taskFront(v)
	}
	return f
}

// node enrols a redfish node with the redfish raid interface and a target RAID config.
func (f *raidFixture) node(t *testing.T, target ironwork.JSONObject) *ironwork.Node {
	t.Helper()
	n := &ironwork.Node{Driver: "redfish", ProvisionState: ironwork.Cleaning, TargetRAIDConfig: target,
		DriverInfo: ironwork.JSONObject{"redfish_address": f.url, "redfish_system_id": "/redfish/v1/Systems/vm1",
			"redfish_username": "admin", "redfish_password": "password"},
		Interfaces: map[ironwork.InterfaceKind]string{ironwork.ManagementInterface: "redfish", ironwork.PowerInterface: "redfish",
			ironwork.RAIDInterface: "redfish"}}
	if err := ironwork.DefaultDriverConfig().ResolveInterfaces(n); err != nil {
		t.Fatal(err)
	}
	if err := f.store.CreateNode(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (f *raidFixture) step(t *testing.T, uuid string, step conductor.Step) (*ironwork.Node, error) {
	t.Helper()
	var stepErr error
	var out *ironwork.Node
	err := f.cond.WithNode(context.Background(), uuid, func(tk *conductor.Task) error {
		_, stepErr = tk.Driver.Impl(ironwork.RAIDInterface).(conductor.StepRunner).RunStep(context.Background(), tk, step)
		out = tk.Node
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, stepErr
}

func (f *raidFixture) volumes(t *testing.T) []map[string]any {
	t.Helper()
	get := func(path string, v any) {
		req, _ := http.NewRequest("GET", f.vbmc.RedfishURL+path, nil)
		req.SetBasicAuth("admin", "password")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(v)
	}
	var coll struct {
		Members []struct {
			ID string `json:"@odata.id"`
		}
	}
	get("/redfish/v1/Systems/vm1/Storage/0/Volumes", &coll)
	var out []map[string]any
	for _, m := range coll.Members {
		var vol map[string]any
		get(m.ID, &vol)
		out = append(out, vol)
	}
	return out
}

// TestApplyConfigurationDeployStep: the deploy step apply_configuration takes its config from
// its arguments, stores it as the target, replaces the volumes there (delete_existing defaults
// to true) and records raid_config; a config the interface cannot build fails first.
func TestApplyConfigurationDeployStep(t *testing.T) {
	f := newRAIDFixture(t, nil)
	n := f.node(t, ironwork.JSONObject{"logical_disks": []any{map[string]any{"size_gb": 1.0, "raid_level": "0"}}})
	if _, err := f.step(t, n.UUID, conductor.Step{Name: "create_configuration"}); err != nil {
		t.Fatal(err)
	}
	if got := f.volumes(t); len(got) != 1 {
		t.Fatalf("volumes after create_configuration: %v", got)
	}
	cfg := map[string]any{"logical_disks": []any{map[string]any{"size_gb": "MAX", "raid_level": "1+0", "is_root_volume": true}}}
	if _, err := f.step(t, n.UUID, conductor.Step{Name: "apply_configuration", Args: map[string]any{"raid_config": map[string]any{
		"logical_disks": []any{map[string]any{"size_gb": 1.0, "raid_level": "JBOD"}}}}}); err == nil || !strings.Contains(err.Error(), "RAID level JBOD cannot be built through Redfish") {
		t.Fatalf("JBOD: %v", err)
	}
	// RAID 1+0 needs 4 drives; the machine has 3.
	if _, err := f.step(t, n.UUID, conductor.Step{Name: "apply_configuration", Args: map[string]any{"raid_config": cfg}}); err == nil ||
		!strings.Contains(err.Error(), "controller 0 has 3 free drives that match") {
		t.Fatalf("RAID 1+0 on 3 drives: %v", err)
	}
	if got := f.volumes(t); len(got) != 1 {
		t.Fatalf("a failed apply_configuration changed the volumes: %v", got)
	}
	cfg["logical_disks"] = []any{map[string]any{"size_gb": "MAX", "raid_level": "1", "is_root_volume": true}}
	node, err := f.step(t, n.UUID, conductor.Step{Name: "apply_configuration", Args: map[string]any{"raid_config": cfg}})
	if err != nil {
		t.Fatal(err)
	}
	got := f.volumes(t)
	if len(got) != 1 || got[0]["RAIDType"] != "RAID1" || got[0]["CapacityBytes"] != float64(8<<30) {
		t.Fatalf("volumes after apply_configuration: %v", got)
	}
	lds := node.RAIDConfig["logical_disks"].([]any)
	if len(lds) != 1 || fmt.Sprint(lds[0].(map[string]any)["size_gb"]) != "8" || node.TargetRAIDConfig["logical_disks"].([]any)[0].(map[string]any)["raid_level"] != "1" {
		t.Fatalf("raid_config %v, target %v", node.RAIDConfig, node.TargetRAIDConfig)
	}
}

// taskFront proxies to the vbmc and turns every volume POST and DELETE into a Redfish task:
// 202 with a task monitor that answers 202 twice, then the task (Completed, or Exception with
// a message when fail is set).
func taskFront(t *testing.T, fail bool, polls *atomic.Int32) func(v *vbmc.VBMC) string {
	return func(v *vbmc.VBMC) string {
		target, _ := url.Parse(v.RedfishURL)
		proxy := httputil.NewSingleHostReverseProxy(target)
		var mu sync.Mutex
		left := map[string]int{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if mon, ok := strings.CutPrefix(r.URL.Path, "/taskmon/"); ok {
				polls.Add(1)
				mu.Lock()
				left[mon]--
				n := left[mon]
				mu.Unlock()
				if n > 0 {
					w.Header().Set("Location", r.URL.Path)
					w.WriteHeader(http.StatusAccepted)
					return
				}
				state, msgs := "Completed", []map[string]string{}
				if fail {
					state, msgs = "Exception", []map[string]string{{"Message": "controller battery low"}}
				}
				json.NewEncoder(w).Encode(map[string]any{"@odata.id": "/redfish/v1/TaskService/Tasks/" + mon, "Id": mon, "TaskState": state, "Messages": msgs})
				return
			}
			if (r.Method == http.MethodPost || r.Method == http.MethodDelete) && strings.Contains(r.URL.Path, "/Volumes") {
				rec := httptest.NewRecorder()
				if !fail {
					proxy.ServeHTTP(rec, r)
				}
				mu.Lock()
				mon := fmt.Sprint(len(left) + 1)
				left[mon] = 3
				mu.Unlock()
				w.Header().Set("Location", "/taskmon/"+mon)
				w.WriteHeader(http.StatusAccepted)
				return
			}
			proxy.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
}

// TestRAIDFollowsBMCTasks: a BMC that answers 202 is followed on its task monitor until the
// task ends; a task that ends in Exception fails the step with the BMC's message.
func TestRAIDFollowsBMCTasks(t *testing.T) {
	var polls atomic.Int32
	f := newRAIDFixture(t, taskFront(t, false, &polls))
	n := f.node(t, ironwork.JSONObject{"logical_disks": []any{map[string]any{"size_gb": 2.0, "raid_level": "1"}}})
	if _, err := f.step(t, n.UUID, conductor.Step{Name: "create_configuration"}); err != nil {
		t.Fatal(err)
	}
	if got := f.volumes(t); len(got) != 1 || polls.Load() != 3 {
		t.Fatalf("volumes %v after %d task polls, want 1 after 3", got, polls.Load())
	}
	if _, err := f.step(t, n.UUID, conductor.Step{Name: "delete_configuration"}); err != nil {
		t.Fatal(err)
	}
	if got := f.volumes(t); len(got) != 0 || polls.Load() != 6 {
		t.Fatalf("volumes %v after %d task polls, want 0 after 6", got, polls.Load())
	}

	var failPolls atomic.Int32
	f = newRAIDFixture(t, taskFront(t, true, &failPolls))
	n = f.node(t, ironwork.JSONObject{"logical_disks": []any{map[string]any{"size_gb": 2.0, "raid_level": "1"}}})
	node, err := f.step(t, n.UUID, conductor.Step{Name: "create_configuration"})
	if err == nil || !strings.Contains(err.Error(), "ended in Exception: controller battery low") {
		t.Fatalf("error = %v", err)
	}
	if len(node.RAIDConfig) != 0 {
		t.Fatalf("raid_config after a failed task = %v", node.RAIDConfig)
	}
}
