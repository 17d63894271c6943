package direct

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// driver_internal_info keys of a partition-image deploy. root_uuid_or_disk_id is Ironic's
// key; the ESP's UUID is kept for image.install_bootloader.
const (
	rootUUIDKey  = "root_uuid_or_disk_id"
	espUUIDKey   = "ironwork_efi_system_partition_uuid"
	wholeDiskKey = "is_whole_disk_image"
)

// isPartitionImage says whether instance_info describes a partition image, as Ironic
// decides for images that are not in Glance: image_type "partition", or a kernel and a
// ramdisk given with the image.
func isPartitionImage(ii ironwork.JSONObject) bool {
	if t, _ := ii["image_type"].(string); t != "" {
		return t == "partition"
	}
	k, _ := ii["kernel"].(string)
	r, _ := ii["ramdisk"].(string)
	return k != "" && r != ""
}

// validatePartition checks what a partition-image deploy needs from instance_info.
func validatePartition(ii ironwork.JSONObject) error {
	k, _ := ii["kernel"].(string)
	r, _ := ii["ramdisk"].(string)
	switch t, _ := ii["image_type"].(string); t {
	case "", "partition":
	case "whole-disk":
		if k != "" || r != "" {
			return fmt.Errorf("instance_info.kernel and ramdisk are for partition images, but image_type is whole-disk")
		}
	default:
		return fmt.Errorf("instance_info.image_type %q is neither whole-disk nor partition", t)
	}
	if (k == "") != (r == "") {
		missing := "kernel"
		if r == "" {
			missing = "ramdisk"
		}
		return fmt.Errorf("instance_info.%s is missing: a partition image's kernel and ramdisk go together", missing)
	}
	if !isPartitionImage(ii) {
		return nil
	}
	if _, ok := ii["root_gb"]; !ok {
		return fmt.Errorf("some parameters were missing in node's instance_info: root_gb (a partition image needs the root partition's size; 0 takes the whole disk)")
	}
	for _, key := range []string{"root_gb", "swap_mb", "ephemeral_gb"} {
		if _, err := wholeNumber(ii, key); err != nil {
			return err
		}
	}
	if f, _ := ii["ephemeral_format"].(string); f != "" {
		switch f {
		case "ext2", "ext3", "ext4", "vfat", "fat":
		default:
			return fmt.Errorf("instance_info.ephemeral_format %q is not supported (ext2, ext3, ext4, vfat)", f)
		}
	}
	switch l := diskLabel(ii); l {
	case "", "gpt", "msdos":
	default:
		return fmt.Errorf("the disk_label capability %q is neither gpt nor msdos", l)
	}
	return nil
}

// diskLabel is the disk_label capability of instance_info.
func diskLabel(ii ironwork.JSONObject) string {
	return strings.ToLower(ironwork.Capability(ii["capabilities"], "disk_label"))
}

// wholeNumber reads a non-negative whole number given as a number or a string; absent is 0.
func wholeNumber(ii ironwork.JSONObject, key string) (int64, error) {
	bad := fmt.Errorf("instance_info.%s must be a non-negative whole number, not %v", key, ii[key])
	switch v := ii[key].(type) {
	case nil:
		return 0, nil
	case float64:
		if v < 0 || v != math.Trunc(v) || v > 1<<40 {
			return 0, bad
		}
		return int64(v), nil
	case json.Number:
		n, err := v.Int64()
		if err != nil || n < 0 {
			return 0, bad
		}
		return n, nil
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 {
			return 0, bad
		}
		return n, nil
	}
	return 0, bad
}

// partitionImageInfo adds what the agent needs for a partition image to image_info, in
// Ironic's names: the sizes in MiB, the ephemeral format, the disk label and the boot mode.
func partitionImageInfo(n *ironwork.Node, info map[string]any, defBootMode string) {
	ii := n.InstanceInfo
	root, _ := wholeNumber(ii, "root_gb")
	swap, _ := wholeNumber(ii, "swap_mb")
	eph, _ := wholeNumber(ii, "ephemeral_gb")
	info["image_type"] = "partition"
	info["root_mb"] = root * 1024
	info["swap_mb"] = swap
	info["ephemeral_mb"] = eph * 1024
	info["boot_option"] = "local"
	info["deploy_boot_mode"] = ironwork.ResolveBootMode(n, defBootMode)
	if f, _ := ii["ephemeral_format"].(string); f != "" {
		info["ephemeral_format"] = f
	}
	if l := diskLabel(ii); l != "" {
		info["disk_label"] = l
	}
	if p, _ := ii["preserve_ephemeral"].(bool); p {
		info["preserve_ephemeral"] = true
	}
}

// prepareInstanceBoot is the prepare_instance_boot step: the boot interface boots from
// disk from now on; for a partition image the root and ESP UUIDs are read from the agent
// (standby.get_partition_uuids) and recorded, and image.install_bootloader started, as
// Ironic's agent deploy does. The step then waits for the boot loader.
func (d *Interface) prepareInstanceBoot(ctx context.Context, t *conductor.Task) (bool, error) {
	b, err := boot(t)
	if err != nil {
		return false, err
	}
	if err := b.PrepareInstance(ctx, t); err != nil {
		return false, err
	}
	if !isPartitionImage(t.Node.InstanceInfo) {
		return false, nil
	}
	ep, err := agentOf(t)
	if err != nil {
		return false, err
	}
	res, err := d.agent.run(ctx, ep, "standby.get_partition_uuids", nil, true)
	if err != nil {
		return false, fmt.Errorf("agent command standby.get_partition_uuids: %w", err)
	}
	var uuids struct {
		Root string `json:"root uuid"`
		ESP  string `json:"efi system partition uuid"`
	}
	if err := json.Unmarshal(res.CommandResult, &uuids); err != nil || uuids.Root == "" {
		return false, fmt.Errorf("agent command standby.get_partition_uuids returned no root uuid: %s", res.CommandResult)
	}
	if err := t.Save(ctx, func(n *ironwork.Node) {
		n.DriverInternalInfo[rootUUIDKey] = uuids.Root
		n.DriverInternalInfo[wholeDiskKey] = false
		if uuids.ESP != "" {
			n.DriverInternalInfo[espUUIDKey] = uuids.ESP
		} else {
			delete(n.DriverInternalInfo, espUUIDKey)
		}
	}); err != nil {
		return false, err
	}
	return d.start(ctx, t, conductor.Step{Name: "prepare_instance_boot", Priority: 60})
}

// bootloaderParams are image.install_bootloader's parameters, from what prepareInstanceBoot
// recorded.
func bootloaderParams(n *ironwork.Node, defBootMode string) map[string]any {
	p := map[string]any{
		"root_uuid":        n.DriverInternalInfo[rootUUIDKey],
		"target_boot_mode": ironwork.ResolveBootMode(n, defBootMode),
	}
	if esp, _ := n.DriverInternalInfo[espUUIDKey].(string); esp != "" {
		p["efi_system_part_uuid"] = esp
	}
	return p
}
