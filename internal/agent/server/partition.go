package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/agent"
)

// parseLayout reads the partition layout Ironic sends in image_info for a partition image:
// root_mb (required; 0 takes the rest of the disk), swap_mb, ephemeral_mb,
// ephemeral_format, disk_label and deploy_boot_mode. preserve_ephemeral is refused: the
// agent always lays the disk out anew.
func parseLayout(raw map[string]any) (agent.LayoutRequest, error) {
	var l agent.LayoutRequest
	if _, ok := raw["root_mb"]; !ok {
		return l, errors.New("image_info.root_mb is required for a partition image")
	}
	for _, f := range []struct {
		key string
		dst *int64
	}{{"root_mb", &l.RootMiB}, {"swap_mb", &l.SwapMiB}, {"ephemeral_mb", &l.EphemeralMiB}} {
		n, err := mebibytes(raw[f.key])
		if err != nil {
			return l, fmt.Errorf("image_info.%s: %w", f.key, err)
		}
		*f.dst = n
	}
	if b, _ := raw["preserve_ephemeral"].(bool); b {
		return l, errors.New("image_info.preserve_ephemeral is not supported by ironwork-agent: the disk is laid out anew")
	}
	l.EphemeralFormat = str(raw["ephemeral_format"])
	l.DiskLabel = str(raw["disk_label"])
	l.BootMode = str(raw["deploy_boot_mode"])
	if l.BootMode == "" {
		l.BootMode = str(raw["boot_mode"])
	}
	// Check the rest now, so a bad value is a 400 before the disk is touched.
	if _, err := agent.PlanLayout(agent.LayoutRequest{DiskLabel: l.DiskLabel, BootMode: l.BootMode, EphemeralFormat: l.EphemeralFormat}, 1<<40, 512); err != nil {
		return l, err
	}
	return l, nil
}

// mebibytes reads a non-negative whole number given as a JSON number or a string.
func mebibytes(v any) (int64, error) {
	switch x := v.(type) {
	case nil:
		return 0, nil
	case float64:
		if x < 0 || x != math.Trunc(x) || x > 1<<40 {
			return 0, fmt.Errorf("%v is not a non-negative whole number of MiB", x)
		}
		return int64(x), nil
	case json.Number:
		return mebibytes(x.String())
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a non-negative whole number of MiB", x)
		}
		return n, nil
	}
	return 0, fmt.Errorf("%T is not a number of MiB", v)
}

// preparePartitionImage writes a partition image and its partitions (IPA's work_on_disk)
// and records the UUIDs get_partition_uuids and install_bootloader use.
func (m *Machine) preparePartitionImage(ctx context.Context, info imageInfo, device string, iso []byte, progress ProgressFunc) (any, error) {
	var errs []error
	var res agent.PartitionResult
	for _, u := range info.URLs {
		var err error
		res, err = agent.WritePartitionImage(ctx, agent.PartitionImageRequest{
			Image: agent.ImageRequest{URL: u, Checksum: info.Checksum, DiskFormat: info.DiskFormat, Authorization: info.Authorization,
				HTTPClient: m.HTTPClient, Logger: m.log()},
			Layout: *info.Layout, ConfigDrive: iso, MkfsDir: m.ToolDir,
		}, device, func(r agent.ProgressReport) {
			progress(api.Progress{BytesDone: r.Written, BytesTotal: r.Total, BytesPerSecond: r.BytesPerSecond})
		})
		if err == nil {
			errs = nil
			break
		}
		errs = append(errs, err)
		var hse *agent.HTTPStatusError
		var sre *agent.ShortReadError
		if ctx.Err() != nil || !(errors.As(err, &hse) || errors.As(err, &sre)) {
			break
		}
		m.log().Warn("image download failed, trying the next URL", logKeyError, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	parts := map[string]any{}
	for _, p := range res.Layout.Partitions {
		parts[p.Role] = partitionName(device, p.Number)
	}
	uuids := map[string]any{
		"root uuid":            res.RootUUID,
		"partition_table_type": tableType(res.Layout.DiskLabel),
		"disk identifier":      res.DiskID,
		"partitions":           parts,
	}
	if res.ESPUUID != "" {
		uuids["efi system partition uuid"] = res.ESPUUID
	}
	m.mu.Lock()
	m.partitions = uuids
	m.lastDisk, m.lastMode = device, res.Layout.BootMode
	m.mu.Unlock()
	msg := fmt.Sprintf("prepare_image: image (%s) written to device %s root_uuid=%s", info.ID, device, res.RootUUID)
	out := map[string]any{
		"result":        msg,
		"root uuid":     res.RootUUID,
		"device":        device,
		"format":        string(res.Format),
		"bytes_written": res.BytesWritten,
		"digest":        res.Digest,
		"partitions":    parts,
	}
	if res.ESPUUID != "" {
		out["efi system partition uuid"] = res.ESPUUID
	}
	return out, nil
}

// partitionName is the kernel's name of partition n of device (/dev/sda1, /dev/nvme0n1p1).
func partitionName(device string, n int) string {
	if device != "" && device[len(device)-1] >= '0' && device[len(device)-1] <= '9' {
		return fmt.Sprintf("%sp%d", device, n)
	}
	return fmt.Sprintf("%s%d", device, n)
}

func tableType(label string) string {
	if label == "msdos" {
		return "dos"
	}
	return label
}

// installBootloader is IPA's image.install_bootloader: root_uuid (the root file system's
// UUID or PARTUUID), efi_system_part_uuid and target_boot_mode, on the disk this agent
// wrote a partition image to. After a whole-disk image (or none) there is nothing to
// install: the image brings its own boot loader.
func (m *Machine) installBootloader(ctx context.Context, params map[string]any, _ ProgressFunc) (any, error) {
	rootUUID := str(params["root_uuid"])
	m.mu.Lock()
	disk, mode := m.lastDisk, m.lastMode
	m.mu.Unlock()
	if rootUUID == "" || disk == "" {
		// A whole-disk image (or none written by this agent): it brings its own boot loader.
		return "whole-disk image: its own boot loader is used, nothing to install", nil
	}
	if bm := str(params["target_boot_mode"]); bm != "" {
		mode = bm
	}
	res, err := agent.InstallBootloader(ctx, agent.BootloaderRequest{
		Disk: disk, BootMode: mode, RootUUID: rootUUID, ESPUUID: str(params["efi_system_part_uuid"]),
		SysRoot: m.sysRoot(), ToolDir: m.ToolDir, EFIVars: m.EFIVars, Logger: m.log(),
	})
	if err != nil {
		// ignore_bootloader_failure is not honoured: the failed install zeroed the disk's
		// first MiB, so the node could not boot anyway.
		return nil, err
	}
	out := map[string]any{"method": res.Method, "seconds": res.Duration.Seconds()}
	if res.Loader != "" {
		out["loader"] = res.Loader
	}
	if res.BootEntry != "" {
		out["boot_entry"] = res.BootEntry
	}
	return out, nil
}
