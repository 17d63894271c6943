package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ironwork/ironwork/internal/agent"
)

// fakeMD is the md layer over a fake sysfs tree: a created array appears as
// sys/block/mdN (size, md/level, slaves) as the kernel shows it, its members get a
// superblock; Stop removes the array, Wipe the superblock.
type fakeMD struct {
	t       *testing.T
	root    string
	sizes   map[string]int64 // member sizes in bytes
	sb      map[string]int   // member -> minor of the array whose superblock it carries
	running map[int][]string
	level   map[int]int
	calls   []string
}

func newFakeMD(t *testing.T, disks map[string]int64) *fakeMD {
	f := &fakeMD{t: t, root: t.TempDir(), sizes: disks, sb: map[string]int{}, running: map[int][]string{}, level: map[int]int{}}
	for name, size := range disks {
		f.write("sys/block/"+name+"/size", fmt.Sprint(size/512))
	}
	return f
}

func (f *fakeMD) write(rel, content string) {
	p := filepath.Join(f.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content+"\n"), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeMD) Arrays() ([]agent.MDArray, error) {
	var out []agent.MDArray
	for minor, members := range f.running {
		out = append(out, agent.MDArray{Minor: minor, Level: f.level[minor], Members: members})
	}
	slices.SortFunc(out, func(a, b agent.MDArray) int { return a.Minor - b.Minor })
	return out, nil
}

func (f *fakeMD) Assemble() ([]agent.MDArray, error) {
	groups := map[int][]string{}
	for d, minor := range f.sb {
		if _, up := f.running[minor]; !up {
			groups[minor] = append(groups[minor], d)
		}
	}
	var out []agent.MDArray
	for minor, members := range groups {
		slices.Sort(members)
		f.start(minor, f.level[minor], members)
		f.calls = append(f.calls, fmt.Sprintf("assemble md%d %v", minor, members))
		out = append(out, agent.MDArray{Minor: minor, Members: members})
	}
	return out, nil
}

func (f *fakeMD) start(minor, level int, members []string) {
	f.running[minor], f.level[minor] = members, level
	name := fmt.Sprintf("md%d", minor)
	f.write("sys/block/"+name+"/size", fmt.Sprint(f.sizes[strings.TrimPrefix(members[0], "/dev/")]/512-128))
	f.write("sys/block/"+name+"/md/level", fmt.Sprintf("raid%d", level))
}

func (f *fakeMD) Create(minor, level int, members []string) (string, error) {
	if _, up := f.running[minor]; up {
		return "", errors.New("busy")
	}
	for _, m := range members {
		f.sb[m] = minor
	}
	f.start(minor, level, members)
	f.calls = append(f.calls, fmt.Sprintf("create md%d raid%d %v", minor, level, members))
	return fmt.Sprintf("/dev/md%d", minor), nil
}

func (f *fakeMD) Stop(minor int) error {
	delete(f.running, minor)
	os.RemoveAll(filepath.Join(f.root, "sys/block", fmt.Sprintf("md%d", minor)))
	f.calls = append(f.calls, fmt.Sprintf("stop md%d", minor))
	return nil
}

func (f *fakeMD) Wipe(d string) error {
	if _, ok := f.sb[d]; ok {
		f.calls = append(f.calls, "wipe "+d)
	}
	delete(f.sb, d)
	return nil
}

func (f *fakeMD) Superblock(d string) (agent.MDSuperblock, bool, error) {
	minor, ok := f.sb[d]
	return agent.MDSuperblock{Minor: minor, Level: f.level[minor], RaidDisks: 2}, ok, nil
}

func raidStep(step string, cfg map[string]any, args map[string]any) map[string]any {
	return map[string]any{"step": map[string]any{"interface": "raid", "step": step, "args": args},
		"node": map[string]any{"uuid": "n1", "target_raid_config": cfg}}
}

// TestSoftwareRAIDSteps runs the raid clean steps against the fake md layer: the mirror is
// planned and created over both disks and reported as built; a second create finds it and
// refuses until delete_existing; the root device hint /dev/md0 then chooses the array, and
// cleaning erases the array rather than its members; delete_configuration stops it and wipes
// the members. A configuration the agent cannot build changes nothing.
func TestSoftwareRAIDSteps(t *testing.T) {
	md := newFakeMD(t, map[string]int64{"vda": 8 << 30, "vdb": 4 << 30})
	m := &Machine{SysRoot: md.root, SoftwareRAID: md}
	ctx := context.Background()
	mirror := map[string]any{"logical_disks": []any{map[string]any{"raid_level": "1", "size_gb": "MAX", "controller": "software", "volume_name": "root"}}}

	_, err := m.executeCleanStep(ctx, raidStep("create_configuration", map[string]any{"logical_disks": []any{
		map[string]any{"raid_level": "1", "size_gb": 6.0, "controller": "software"}}}, nil), nil)
	var e *Error
	if !errors.As(err, &e) || e.Type != "SoftwareRAIDError" || !strings.Contains(e.Details, "does not fit") || len(md.calls) != 0 {
		t.Fatalf("a mirror larger than the smaller disk: %v (calls %v)", err, md.calls)
	}

	res, err := m.executeCleanStep(ctx, raidStep("create_configuration", mirror, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"clean_result": map[string]any{"logical_disks": []any{map[string]any{"raid_level": "1", "size_gb": "MAX",
		"controller": "software", "volume_name": "root", "physical_disks": []any{"/dev/vda", "/dev/vdb"}, "device": "/dev/md0"}}},
		"clean_step": map[string]any{"interface": "raid", "step": "create_configuration", "args": map[string]any(nil)}}
	if d := cmp.Diff(want, res); d != "" {
		t.Errorf("create_configuration result (-want +got):\n%s", d)
	}
	if _, err := m.executeCleanStep(ctx, raidStep("create_configuration", mirror, nil), nil); err == nil || !strings.Contains(err.Error(), "/dev/md0 already exists") {
		t.Errorf("a second create: %v", err)
	}

	dev, err := m.chooseDevice(map[string]any{"name": "/dev/md0"})
	if err != nil || dev != "/dev/md0" {
		t.Errorf("root device with the mirror's hint: %q %v", dev, err)
	}
	if dev, err := m.chooseDevice(map[string]any{"name": "/dev/vda"}); err == nil {
		t.Errorf("a member chosen as root device: %s", dev)
	}
	targets, err := m.cleanTargets()
	if err != nil || fmt.Sprint(targets) != "[/dev/md0]" {
		t.Errorf("cleaning targets with a mirror: %v %v", targets, err)
	}

	// The next ramdisk boot: the array is not running; its members are found and assembled.
	md.Stop(0)
	md.calls = nil
	if targets, err := m.cleanTargets(); err != nil || fmt.Sprint(targets) != "[/dev/md0]" || fmt.Sprint(md.calls) != "[assemble md0 [/dev/vda /dev/vdb]]" {
		t.Errorf("after a reboot: targets %v %v, calls %v", targets, err, md.calls)
	}

	md.calls = nil
	if _, err := m.executeCleanStep(ctx, raidStep("create_configuration", mirror, map[string]any{"delete_existing": true}), nil); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"stop md0", "wipe /dev/vda", "wipe /dev/vdb", "create md0 raid1 [/dev/vda /dev/vdb]"}, md.calls); d != "" {
		t.Errorf("create with delete_existing (-want +got):\n%s", d)
	}
	// Powering off stops the array (its metadata then says clean).
	md.calls = nil
	m.PowerOff = func() {}
	if _, err := m.powerOff(ctx, nil, nil); err != nil || fmt.Sprint(md.calls) != "[stop md0]" {
		t.Errorf("power off: %v, calls %v", err, md.calls)
	}
	md.Assemble()

	md.calls = nil
	if _, err := m.executeCleanStep(ctx, raidStep("delete_configuration", nil, nil), nil); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"stop md0", "wipe /dev/vda", "wipe /dev/vdb"}, md.calls); d != "" {
		t.Errorf("delete_configuration (-want +got):\n%s", d)
	}
	if targets, err := m.cleanTargets(); err != nil || fmt.Sprint(targets) != "[/dev/vda /dev/vdb]" {
		t.Errorf("cleaning targets after delete: %v %v", targets, err)
	}

	if _, err := (&Machine{SysRoot: md.root}).executeCleanStep(ctx, raidStep("create_configuration", mirror, nil), nil); err == nil ||
		!strings.Contains(err.Error(), "no md layer") {
		t.Errorf("an agent without md: %v", err)
	}
}
