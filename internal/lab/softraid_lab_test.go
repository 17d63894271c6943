package lab_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/agent"
	"github.com/ironwork/ironwork/internal/lab"
)

// checkSoftwareRAIDDeploy runs issue 16's software RAID on a lab machine with two disks (the
// agent raid interface): a configuration the agent cannot build is refused at PUT
// /states/raid; a manual clean (deploy.boot_agent, raid.create_configuration,
// deploy.tear_down_cleaning) builds a RAID-1 mirror over both disks; raid_config and the root
// device hint /dev/md0 come back from the agent; provide (automated cleaning erases the
// mirror's metadata, not its members'), deploy writes the image once onto /dev/md0, and the
// machine boots it from its first disk. Both disk files then hold the image at byte 0 and a
// 0.90 superblock of the same array at their end.
func checkSoftwareRAIDDeploy(ctx context.Context, t testing.TB, st *lab.State, name string) {
	t.Helper()
	begin := time.Now()
	n, ok := st.Node(name)
	if !ok || len(n.Disks) != 2 {
		t.Fatalf("software RAID needs a lab machine with two disks: %+v", n)
	}
	c := st.Client()
	path := "/v1/nodes/" + n.UUID
	if err := c.Do(ctx, http.MethodPatch, path, []map[string]any{{"op": "add", "path": "/raid_interface", "value": "agent"}}, nil); err != nil {
		t.Fatalf("raid_interface agent: %v", err)
	}
	bad := map[string]any{"logical_disks": []any{map[string]any{"size_gb": "MAX", "raid_level": "0", "controller": "software"}}}
	if err := c.Do(ctx, http.MethodPut, path+"/states/raid", bad, nil); !isStatusWith(err, http.StatusBadRequest, "RAID-1 for the first logical disk") {
		t.Errorf("a software RAID-0 first volume: %v, want 400 naming the RAID-1 rule", err)
	}
	target := map[string]any{"logical_disks": []any{map[string]any{"size_gb": "MAX", "raid_level": "1", "controller": "software",
		"is_root_volume": true, "volume_name": "root-mirror"}}}
	if err := c.Do(ctx, http.MethodPut, path+"/states/raid", target, nil); err != nil {
		t.Fatalf("target_raid_config: %v", err)
	}
	var node map[string]any
	_ = c.Do(ctx, http.MethodGet, path, nil, &node)
	if node["provision_state"] == "enroll" {
		if err := lab.ProvisionVerb(ctx, c, n.UUID, "manage", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := lab.WaitState(ctx, c, n.UUID, "manageable", time.Minute, nil); err != nil {
			t.Fatalf("manage: %v", err)
		}
	}
	steps := []any{
		map[string]any{"interface": "deploy", "step": "boot_agent"},
		map[string]any{"interface": "raid", "step": "create_configuration"},
		map[string]any{"interface": "deploy", "step": "tear_down_cleaning"},
	}
	start := time.Now()
	if err := lab.ProvisionVerb(ctx, c, n.UUID, "clean", map[string]any{"clean_steps": steps}); err != nil {
		t.Fatalf("manual clean: %v", err)
	}
	node, err := lab.WaitState(ctx, c, n.UUID, "manageable", 5*time.Minute, nil)
	if err != nil {
		t.Fatalf("manual clean with raid.create_configuration: %v", err)
	}
	t.Logf("software RAID: manual clean (boot the agent, create the mirror, power off): %.1f s", time.Since(start).Seconds())
	rc, _ := node["raid_config"].(map[string]any)
	lds, _ := rc["logical_disks"].([]any)
	props, _ := node["properties"].(map[string]any)
	if len(lds) != 1 {
		t.Fatalf("raid_config after create_configuration: %v", node["raid_config"])
	}
	ld, _ := lds[0].(map[string]any)
	members := fmt.Sprint(ld["physical_disks"])
	if ld["controller"] != "software" || ld["raid_level"] != "1" || ld["device"] != "/dev/md0" || members != "[/dev/vda /dev/vdb]" ||
		ld["volume_name"] != "root-mirror" {
		t.Errorf("raid_config logical disk: %v", ld)
	}
	if hint := fmt.Sprint(props["root_device"]); hint != "map[name:/dev/md0]" || !strings.Contains(fmt.Sprint(props["capabilities"]), "raid_level:1") {
		t.Errorf("properties after create_configuration: root_device %s, capabilities %v", hint, props["capabilities"])
	}
	res := lab.Cycle(ctx, st, []string{name}, lab.CycleOptions{Timeout: 5 * time.Minute, SkipUndeploy: true})
	for _, p := range res[0].Phases {
		t.Logf("software RAID: %-30s %6.1f s", p.Name, p.Duration.Seconds())
	}
	if res[0].Err != nil {
		t.Fatalf("deploy onto the mirror: %v", res[0].Err)
	}
	if !strings.Contains(res[0].BootedLine, "firmware="+n.Firmware) {
		t.Errorf("the instance on the mirror reported %q", res[0].BootedLine)
	}
	img, err := os.ReadFile(filepath.Join(st.Dir, "data", "boot", "lab", "image.raw"))
	if err != nil {
		t.Fatal(err)
	}
	var uuids [][4]uint32
	for i, d := range n.Disks {
		f, err := os.Open(d)
		if err != nil {
			t.Fatal(err)
		}
		// The booted first disk may have been written by the instance since: its first MiB
		// (boot sector, partition table, boot loader) is compared; the second disk whole.
		want := img
		if i == 0 {
			want = img[:min(len(img), 1<<20)]
		}
		got := make([]byte, len(want))
		_, err = io.ReadFull(f, got)
		f.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("member %d (%s) does not start with the image (%d bytes compared): %v", i, d, len(want), err)
		}
		sb, ok, err := agent.ReadMDSuperblock(d)
		if err != nil || !ok || sb.Level != 1 || sb.RaidDisks != 2 || sb.Minor != 0 {
			t.Errorf("member %d (%s): md superblock %+v %v %v", i, d, sb, ok, err)
		}
		uuids = append(uuids, sb.UUID)
	}
	if len(uuids) == 2 && uuids[0] != uuids[1] {
		t.Errorf("the members carry different arrays: %v", uuids)
	}
	t.Logf("software RAID-1: target, manual clean, provide, deploy onto /dev/md0, instance booted from the first member: %.1f s (%s)",
		time.Since(begin).Seconds(), res[0].BootedLine)
}

// isStatusWith says whether err is an API error with status code whose text holds want.
func isStatusWith(err error, code int, want string) bool {
	return api.IsStatus(err, code) && strings.Contains(err.Error(), want)
}
