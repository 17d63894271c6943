package redfish

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// RAID is the redfish raid interface: create_configuration and delete_configuration (clean
// steps) and apply_configuration (deploy step) build the node's target_raid_config as volumes
// of its Redfish Storage controllers (POST to Storage/{id}/Volumes, DELETE of a volume), talking
// only to the BMC: none of its steps needs the deploy ramdisk. The whole configuration is
// planned against the drives and volumes the BMC reports before anything is sent, so one that
// does not fit fails with nothing changed. A BMC that answers 202 is followed on its task
// monitor, inline in the step, for at most TaskTimeout.
type RAID struct {
	Interface
	// TaskTimeout bounds the wait for one volume's creation or deletion when the BMC runs it
	// as a task (default 10 minutes).
	TaskTimeout time.Duration
}

var (
	_ conductor.StepProvider        = RAID{}
	_ conductor.StepRunner          = RAID{}
	_ conductor.RAIDConfigValidator = RAID{}
	_ conductor.Validator           = RAID{}
)

// redfishRAIDTypes maps Ironic's RAID levels onto Redfish's RAIDType.
var redfishRAIDTypes = map[string]schemas.RAIDType{
	"0": schemas.RAID0RAIDType, "1": schemas.RAID1RAIDType, "5": schemas.RAID5RAIDType, "6": schemas.RAID6RAIDType,
	"1+0": schemas.RAID10RAIDType, "5+0": schemas.RAID50RAIDType, "6+0": schemas.RAID60RAIDType,
}

// Steps implements conductor.StepProvider: Ironic's redfish raid steps, all of priority 0
// (manual cleaning, or a deploy template), none needing the ramdisk.
func (RAID) Steps(kind conductor.StepKind) []conductor.Step {
	switch kind {
	case conductor.CleanSteps:
		return []conductor.Step{{Name: "create_configuration"}, {Name: "delete_configuration"}}
	case conductor.DeploySteps:
		return []conductor.Step{{Name: "apply_configuration"}, {Name: "delete_configuration"}}
	}
	return nil
}

// Validate implements conductor.Validator, as Ironic's RedfishRAID: driver_info, and the
// node's target_raid_config when it has one.
func (r RAID) Validate(ctx context.Context, t *conductor.Task) error {
	if err := r.Interface.Validate(ctx, t); err != nil {
		return err
	}
	if len(t.Node.TargetRAIDConfig) == 0 {
		return nil
	}
	disks, err := ironwork.ParseRAIDConfig(t.Node.TargetRAIDConfig)
	if err != nil {
		return err
	}
	return r.ValidateRAIDConfig(ctx, t, disks)
}

// ValidateRAIDConfig implements conductor.RAIDConfigValidator: what a Redfish controller can
// build (no software RAID, no JBOD or RAID 2, disk counts within the level's).
func (RAID) ValidateRAIDConfig(_ context.Context, _ *conductor.Task, disks []ironwork.LogicalDisk) error {
	for i, d := range disks {
		if d.Controller == "software" {
			return ironwork.Errorf(ironwork.EINVALID, "logical disk %d asks for software RAID: the redfish raid interface builds volumes on the BMC's controllers; use the agent raid interface", i)
		}
		if _, ok := redfishRAIDTypes[d.RAIDLevel]; !ok {
			return ironwork.Errorf(ironwork.EINVALID, "logical disk %d: RAID level %s cannot be built through Redfish (supported: 0, 1, 5, 6, 1+0, 5+0, 6+0)", i, d.RAIDLevel)
		}
		if err := diskCount(i, d); err != nil {
			return err
		}
	}
	return nil
}

// diskCount checks number_of_physical_disks (or the physical_disks given) against the level.
func diskCount(i int, d ironwork.LogicalDisk) error {
	l, _ := ironwork.RAIDLevelInfo(d.RAIDLevel)
	n := cmp.Or(d.NumberOfPhysicalDisks, len(d.PhysicalDisks))
	if n != 0 && (n < l.MinDisks || n > l.MaxDisks || (l.Spans > 0 && n%l.Spans != 0)) {
		return ironwork.Errorf(ironwork.EINVALID, "logical disk %d: RAID %s takes %d to %d physical disks, not %d", i, d.RAIDLevel, l.MinDisks, l.MaxDisks, n)
	}
	return nil
}

// RunStep implements conductor.StepRunner.
func (r RAID) RunStep(ctx context.Context, t *conductor.Task, step conductor.Step) (bool, error) {
	switch step.Name {
	case "create_configuration":
		disks, err := conductor.TargetRAID(t.Node)
		if err != nil {
			return false, err
		}
		disks, err = filterRoot(t.Node.UUID, disks, argBool(step.Args, "create_root_volume", true), argBool(step.Args, "create_nonroot_volumes", true))
		if err != nil {
			return false, err
		}
		return false, r.create(ctx, t, disks, argBool(step.Args, "delete_existing", false))
	case "apply_configuration":
		raw, _ := step.Args["raid_config"].(map[string]any)
		if raw == nil {
			return false, ironwork.Errorf(ironwork.EINVALID, "apply_configuration needs the argument raid_config")
		}
		disks, err := ironwork.ParseRAIDConfig(raw)
		if err != nil {
			return false, err
		}
		if err := r.ValidateRAIDConfig(ctx, t, disks); err != nil {
			return false, err
		}
		if err := t.Save(ctx, func(n *ironwork.Node) { n.TargetRAIDConfig = raw }); err != nil {
			return false, err
		}
		return false, r.create(ctx, t, disks, argBool(step.Args, "delete_existing", true))
	case "delete_configuration":
		return false, r.deleteAll(ctx, t)
	}
	return false, fmt.Errorf("the redfish raid interface has no step %q", step.Name)
}

func argBool(args map[string]any, key string, def bool) bool {
	if b, ok := args[key].(bool); ok {
		return b
	}
	return def
}

// filterRoot keeps the root volume and/or the others, as Ironic's filter_target_raid_config.
func filterRoot(node string, disks []ironwork.LogicalDisk, root, nonRoot bool) ([]ironwork.LogicalDisk, error) {
	out := slices.DeleteFunc(slices.Clone(disks), func(d ironwork.LogicalDisk) bool {
		return (d.IsRootVolume && !root) || (!d.IsRootVolume && !nonRoot)
	})
	if len(out) == 0 {
		return nil, ironwork.Errorf(ironwork.EINVALID, "Node %s has empty target RAID configuration after skipping root and/or non-root volumes.", node)
	}
	return out, nil
}

// rfDrive, rfVolume and rfStorage are what the interface reads of a Storage resource.
type rfDrive struct {
	URI, ID, Name, MediaType, Protocol string
	Size                               int64
}

type rfVolume struct {
	URI, ID, Name string
	Drives        []string
}

type rfStorage struct {
	URI, ID, Name, VolumesURI string
	Drives                    []rfDrive
	Volumes                   []rfVolume
}

type odataRef struct {
	ID string `json:"@odata.id"`
}

// readStorage reads every Storage resource of a system with its drives and volumes.
func readStorage(sys *schemas.ComputerSystem) ([]rfStorage, error) {
	c := sys.GetClient()
	var doc struct{ Storage odataRef }
	if err := getJSON(c, sys.ODataID, &doc); err != nil {
		return nil, err
	}
	if doc.Storage.ID == "" {
		return nil, fmt.Errorf("system %s has no Storage", sys.ODataID)
	}
	var coll struct{ Members []odataRef }
	if err := getJSON(c, doc.Storage.ID, &coll); err != nil {
		return nil, err
	}
	var out []rfStorage
	for _, m := range coll.Members {
		var st struct {
			ID      string `json:"Id"`
			Name    string
			Drives  []odataRef
			Volumes odataRef
		}
		if err := getJSON(c, m.ID, &st); err != nil {
			return nil, err
		}
		s := rfStorage{URI: m.ID, ID: st.ID, Name: st.Name, VolumesURI: st.Volumes.ID}
		for _, d := range st.Drives {
			var dr struct {
				ID            string `json:"Id"`
				Name          string
				MediaType     string
				Protocol      string
				CapacityBytes int64
			}
			if err := getJSON(c, d.ID, &dr); err != nil {
				return nil, err
			}
			s.Drives = append(s.Drives, rfDrive{URI: d.ID, ID: dr.ID, Name: dr.Name, MediaType: dr.MediaType, Protocol: dr.Protocol, Size: dr.CapacityBytes})
		}
		if s.VolumesURI != "" {
			var vc struct{ Members []odataRef }
			if err := getJSON(c, s.VolumesURI, &vc); err != nil {
				return nil, err
			}
			for _, v := range vc.Members {
				var vol struct {
					ID    string `json:"Id"`
					Name  string
					Links struct{ Drives []odataRef }
				}
				if err := getJSON(c, v.ID, &vol); err != nil {
					return nil, err
				}
				rv := rfVolume{URI: v.ID, ID: vol.ID, Name: vol.Name}
				for _, d := range vol.Links.Drives {
					rv.Drives = append(rv.Drives, d.ID)
				}
				s.Volumes = append(s.Volumes, rv)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// plannedVolume is one volume to create.
type plannedVolume struct {
	disk    ironwork.LogicalDisk
	storage *rfStorage
	drives  []rfDrive
	size    int64
}

// planVolumes places every logical disk on a controller and its drives, or says why one does
// not fit. Sized disks are placed before "MAX" ones, as Ironic does. Drives in volumes that
// stay (keepExisting) are not free.
func planVolumes(storages []rfStorage, disks []ironwork.LogicalDisk, keepExisting bool) ([]plannedVolume, error) {
	used := map[string]bool{}
	if keepExisting {
		for _, s := range storages {
			for _, v := range s.Volumes {
				for _, d := range v.Drives {
					used[d] = true
				}
			}
		}
	}
	order := make([]int, len(disks))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmpBool(disks[a].SizeMax, disks[b].SizeMax)
	})
	out := make([]plannedVolume, len(disks))
	for _, i := range order {
		d := disks[i]
		p, err := placeDisk(i, d, storages, used)
		if err != nil {
			return nil, err
		}
		for _, dr := range p.drives {
			used[dr.URI] = true
		}
		out[i] = p
	}
	return out, nil
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// placeDisk finds a controller and drives for one logical disk.
func placeDisk(i int, d ironwork.LogicalDisk, storages []rfStorage, used map[string]bool) (plannedVolume, error) {
	if err := diskCount(i, d); err != nil {
		return plannedVolume{}, err
	}
	level, _ := ironwork.RAIDLevelInfo(d.RAIDLevel)
	n := cmp.Or(d.NumberOfPhysicalDisks, len(d.PhysicalDisks), level.MinDisks)
	var reasons []string
	for si := range storages {
		s := &storages[si]
		if d.Controller != "" && d.Controller != s.ID && d.Controller != s.Name && d.Controller != s.URI {
			continue
		}
		if s.VolumesURI == "" {
			reasons = append(reasons, fmt.Sprintf("controller %s has no Volumes", s.ID))
			continue
		}
		var free []rfDrive
		taken := 0
		for _, dr := range s.Drives {
			if used[dr.URI] {
				taken++
				continue
			}
			if driveMatches(d, dr) {
				free = append(free, dr)
			}
		}
		if len(d.PhysicalDisks) > 0 {
			var chosen []rfDrive
			for _, want := range d.PhysicalDisks {
				name, _ := want.(string)
				k := slices.IndexFunc(free, func(dr rfDrive) bool { return name != "" && (name == dr.ID || name == dr.Name || name == dr.URI) })
				if k < 0 {
					return plannedVolume{}, ironwork.Errorf(ironwork.EINVALID, "logical disk %d: physical disk %v is not a free drive of controller %s", i, want, s.ID)
				}
				chosen = append(chosen, free[k])
			}
			free = chosen
		}
		if len(free) < n {
			reasons = append(reasons, fmt.Sprintf("controller %s has %d free drives that match (%d of its %d drives are in volumes that stay or were placed before)",
				s.ID, len(free), taken, len(s.Drives)))
			continue
		}
		// The smallest drives that hold the volume, or the n largest for "MAX".
		slices.SortStableFunc(free, func(a, b rfDrive) int { return cmp.Compare(a.Size, b.Size) })
		if d.SizeMax {
			chosen := free[len(free)-n:]
			return plannedVolume{disk: d, storage: s, drives: chosen, size: level.UsableBytes(n, chosen[0].Size)}, nil
		}
		for k := 0; k+n <= len(free); k++ {
			if level.UsableBytes(n, free[k].Size) >= d.SizeBytes() {
				return plannedVolume{disk: d, storage: s, drives: free[k : k+n], size: d.SizeBytes()}, nil
			}
		}
		most := level.UsableBytes(n, free[len(free)-n].Size)
		reasons = append(reasons, fmt.Sprintf("controller %s: RAID %s over %d of its free drives holds at most %d GiB", s.ID, d.RAIDLevel, n, most>>30))
	}
	if len(reasons) == 0 {
		return plannedVolume{}, ironwork.Errorf(ironwork.EINVALID, "logical disk %d: no Storage controller %q on the BMC", i, d.Controller)
	}
	size := fmt.Sprintf("%d GiB", d.SizeGB)
	if d.SizeMax {
		size = "MAX"
	}
	return plannedVolume{}, ironwork.Errorf(ironwork.EINVALID, "logical disk %d (RAID %s, %s, %d physical disks) does not fit: %s", i, d.RAIDLevel, size, n, strings.Join(reasons, "; "))
}

// driveMatches applies disk_type and interface_type.
func driveMatches(d ironwork.LogicalDisk, dr rfDrive) bool {
	if d.DiskType != "" && !strings.EqualFold(d.DiskType, dr.MediaType) {
		return false
	}
	if d.InterfaceType != "" && !strings.EqualFold(d.InterfaceType, dr.Protocol) {
		return false
	}
	return true
}

// create plans the volumes, then (if asked) deletes the existing ones and creates the new ones,
// and records raid_config.
func (r RAID) create(ctx context.Context, t *conductor.Task, disks []ironwork.LogicalDisk, deleteExisting bool) error {
	if err := r.ValidateRAIDConfig(ctx, t, disks); err != nil {
		return err
	}
	sys, done, err := r.system(ctx, t)
	if err != nil {
		return err
	}
	defer done()
	storages, err := readStorage(sys)
	if err != nil {
		return fmt.Errorf("read the storage of %s: %w", sys.ODataID, err)
	}
	plan, err := planVolumes(storages, disks, !deleteExisting)
	if err != nil {
		return err
	}
	if deleteExisting {
		if err := r.deleteVolumes(ctx, t, sys, storages); err != nil {
			return err
		}
	}
	var built []ironwork.JSONObject
	var root *ironwork.LogicalDisk
	for i, p := range plan {
		payload := map[string]any{"RAIDType": redfishRAIDTypes[p.disk.RAIDLevel], "CapacityBytes": p.size}
		drives := make([]map[string]string, len(p.drives))
		ids := make([]any, len(p.drives))
		for k, dr := range p.drives {
			drives[k] = map[string]string{"@odata.id": dr.URI}
			ids[k] = dr.ID
		}
		payload["Links"] = map[string]any{"Drives": drives}
		if p.disk.VolumeName != "" {
			payload["Name"] = p.disk.VolumeName
		}
		if err := r.send(ctx, sys, http.MethodPost, p.storage.VolumesURI, payload); err != nil {
			return fmt.Errorf("create volume %d (RAID %s) on %s: %w", i, p.disk.RAIDLevel, p.storage.VolumesURI, err)
		}
		t.Log.Info("RAID volume created", "controller", p.storage.ID, "raid", p.disk.RAIDLevel, "bytes", p.size)
		o := p.disk.Object()
		o["size_gb"], o["controller"], o["physical_disks"] = p.size>>30, p.storage.ID, ids
		built = append(built, o)
		if p.disk.IsRootVolume {
			root = &plan[i].disk
		}
	}
	return conductor.RecordRAID(ctx, t, built, root, nil)
}

// deleteAll deletes every volume of every controller and clears raid_config.
func (r RAID) deleteAll(ctx context.Context, t *conductor.Task) error {
	sys, done, err := r.system(ctx, t)
	if err != nil {
		return err
	}
	defer done()
	storages, err := readStorage(sys)
	if err != nil {
		return fmt.Errorf("read the storage of %s: %w", sys.ODataID, err)
	}
	if err := r.deleteVolumes(ctx, t, sys, storages); err != nil {
		return err
	}
	return conductor.RecordRAID(ctx, t, nil, nil, nil)
}

func (r RAID) deleteVolumes(ctx context.Context, t *conductor.Task, sys *schemas.ComputerSystem, storages []rfStorage) error {
	for _, s := range storages {
		for _, v := range s.Volumes {
			if err := r.send(ctx, sys, http.MethodDelete, v.URI, nil); err != nil {
				return fmt.Errorf("delete volume %s: %w", v.URI, err)
			}
			t.Log.Info("RAID volume deleted", "controller", s.ID, "volume", v.URI)
		}
	}
	return nil
}

// send POSTs or DELETEs, and follows the task monitor of a 202.
func (r RAID) send(ctx context.Context, sys *schemas.ComputerSystem, method, uri string, payload any) error {
	c := sys.GetClient()
	var resp *http.Response
	var err error
	if method == http.MethodPost {
		resp, err = c.Post(uri, payload)
	} else {
		resp, err = c.Delete(uri)
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return nil
	}
	tmi := schemas.ParseTaskMonitorInfo(c, resp)
	if tmi.TaskMonitor == "" {
		return fmt.Errorf("the BMC accepted the request (202) but named no task monitor")
	}
	return r.waitTask(ctx, sys, tmi, cmp.Or(r.TaskTimeout, 10*time.Minute))
}
