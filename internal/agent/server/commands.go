package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/agent"
)

// maxConfigDrive bounds a decoded (gunzipped) config drive ISO.
const maxConfigDrive = 128 << 20

// espTypeGUID is the GPT type of an EFI system partition.
const espTypeGUID = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"

// Machine is the node the commands act on: its disks, its logs and how to power it off.
type Machine struct {
	// RootDevice, when set, is the only disk the commands touch: images are written to it
	// (root device hints are not consulted) and cleaning erases only it. Tests use a file.
	RootDevice string
	// SysRoot is where /sys, /dev and /proc are found ("/" on a node).
	SysRoot string
	// Node is the node record from lookup; its properties.root_device hints choose the disk.
	Node map[string]any
	// HTTPClient downloads images and config drives; nil means http.DefaultClient.
	HTTPClient *http.Client
	Logger     *slog.Logger
	// BootMAC is the MAC the node booted from (BOOTIF), reported in the inventory.
	BootMAC string
	// Logs is the agent's own log, included by log.collect_system_logs. Optional.
	Logs *LogBuffer
	// PowerOff is called by standby.power_off after the command has synced the disks and
	// its result is recorded; it should act after a short delay so the conductor can read
	// the result. Nil: the command fails.
	PowerOff func()
	// Rescued is called by rescue.finalize_rescue after it set up the rescue user: the agent
	// should stop its API and heartbeats shortly after (so the conductor reads the result
	// first) and hand the node to the rescue environment. Nil: nothing more happens.
	Rescued func()
	// RescueRoot is where the rescue user's /etc/passwd and /etc/shadow are written: "/" in
	// a ramdisk, a directory in tests. Empty: rescue.finalize_rescue fails (an agent run on
	// a workstation must not add a user to it).
	RescueRoot string
	// SoftwareRAID builds, assembles and removes md arrays (raid clean steps, root devices on
	// a mirror): agent.KernelMD in a ramdisk. Nil: no software RAID (the raid steps fail).
	SoftwareRAID SoftwareRAID

	// ToolDir is where mkfs and mtools are looked for before $PATH ("" = $PATH only).
	ToolDir string
	// EFIVars is efivarfs, where install_bootloader writes the UEFI boot entry:
	// agent.SystemEFIVars in a ramdisk. Empty (an agent run on a workstation must not touch
	// its NVRAM): only the removable-media path is set up.
	EFIVars string

	mu         sync.Mutex
	partitions map[string]any // get_partition_uuids, from the last image written
	lastDisk   string         // the disk of the last partition image written, for install_bootloader
	lastMode   string         // its boot mode
}

func (m *Machine) log() *slog.Logger {
	if m.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return m.Logger
}

func (m *Machine) sysRoot() string {
	if m.SysRoot == "" {
		return "/"
	}
	return m.SysRoot
}

// Commands returns the IPA command set served by this agent.
func (m *Machine) Commands() map[string]Command {
	return map[string]Command{
		"standby.prepare_image": {Run: func(ctx context.Context, p map[string]any, pf ProgressFunc) (any, error) {
			return m.prepareImage(ctx, p, pf, true)
		}, Validate: validateImageInfo},
		"standby.write_image": {Run: func(ctx context.Context, p map[string]any, pf ProgressFunc) (any, error) {
			return m.prepareImage(ctx, p, pf, false)
		}, Validate: validateImageInfo},
		"standby.get_partition_uuids": {Run: m.getPartitionUUIDs, Sync: true},
		"standby.sync":                {Run: m.sync, Sync: true},
		"standby.power_off":           {Run: m.powerOff},
		"image.install_bootloader":    {Run: m.installBootloader},
		"deploy.get_deploy_steps":     {Run: m.getDeploySteps, Sync: true},
		"deploy.execute_deploy_step":  {Run: m.executeDeployStep},
		"clean.get_clean_steps":       {Run: m.getCleanSteps, Sync: true},
		"clean.execute_clean_step":    {Run: m.executeCleanStep},
		"log.collect_system_logs":     {Run: m.collectSystemLogs, Sync: true},
		"poll.get_hardware_info":      {Run: m.getHardwareInfo, Sync: true},
		"system.get_inventory":        {Run: m.getHardwareInfo, Sync: true},
		"rescue.finalize_rescue":      {Run: m.finalizeRescue, Sync: true, Validate: validateRescue},
	}
}

// imageInfo is the part of Ironic's image_info the agent uses.
type imageInfo struct {
	ID         string
	URLs       []string
	Checksum   string
	DiskFormat string
	ImageType  string
	RootDevice map[string]any
	// Authorization is IPA's image_request_authorization, decoded: the Authorization header
	// of the image download (a registry's token).
	Authorization string
	// Layout is set for a partition image (image_type "partition").
	Layout *agent.LayoutRequest
}

func parseImageInfo(params map[string]any) (imageInfo, error) {
	raw, ok := params["image_info"].(map[string]any)
	if !ok {
		return imageInfo{}, errors.New("image_info is required and must be an object")
	}
	info := imageInfo{
		ID:         str(raw["id"]),
		DiskFormat: str(raw["disk_format"]),
		ImageType:  str(raw["image_type"]),
	}
	switch urls := raw["urls"].(type) {
	case []any:
		for _, u := range urls {
			if s := str(u); s != "" {
				info.URLs = append(info.URLs, s)
			}
		}
	case string:
		info.URLs = []string{urls}
	}
	if len(info.URLs) == 0 {
		return imageInfo{}, errors.New("image_info.urls must list at least one URL")
	}
	if algo, value := str(raw["os_hash_algo"]), str(raw["os_hash_value"]); algo != "" && value != "" {
		info.Checksum = strings.ToLower(algo) + ":" + value
	} else {
		info.Checksum = str(raw["checksum"])
	}
	if info.Checksum == "" {
		return imageInfo{}, errors.New("image_info needs checksum or os_hash_algo and os_hash_value")
	}
	switch info.ImageType {
	case "", "whole-disk":
	case "partition":
		l, err := parseLayout(raw)
		if err != nil {
			return imageInfo{}, err
		}
		info.Layout = &l
	default:
		return imageInfo{}, fmt.Errorf("image_info.image_type %q is neither whole-disk nor partition", info.ImageType)
	}
	if rd, ok := raw["root_device"].(map[string]any); ok {
		info.RootDevice = rd
	}
	if a := str(raw["image_request_authorization"]); a != "" {
		b, err := base64.StdEncoding.DecodeString(a)
		if err != nil || !printableHeader(string(b)) {
			return imageInfo{}, errors.New("image_info.image_request_authorization must be a base64-encoded header value")
		}
		info.Authorization = string(b)
	}
	return info, nil
}

// printableHeader reports whether s can be an HTTP header value: printable ASCII.
func printableHeader(s string) bool {
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			return false
		}
	}
	return s != ""
}

func validateImageInfo(params map[string]any) error {
	_, err := parseImageInfo(params)
	return err
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		return fmt.Sprint(x)
	}
}

// chooseDevice picks the root device: --root-device, else the hints (image_info's, else the
// node's properties.root_device) over the node's disks.
func (m *Machine) chooseDevice(hints map[string]any) (string, error) {
	if m.RootDevice != "" {
		return m.RootDevice, nil
	}
	if hints == nil {
		if props, ok := m.Node["properties"].(map[string]any); ok {
			hints, _ = props["root_device"].(map[string]any)
		}
	}
	m.assembleRAID()
	members := m.raidMembers()
	all, err := agent.ListDisks(m.sysRoot())
	if err != nil {
		return "", fmt.Errorf("list disks: %w", err)
	}
	var disks []agent.Disk // a software RAID array's members are written only through it
	for _, d := range all {
		if !members[d.Name] {
			disks = append(disks, d)
		}
	}
	d, err := agent.ChooseRootDevice(disks, hints)
	if err != nil {
		return "", err
	}
	return d.Name, nil
}

func (m *Machine) prepareImage(ctx context.Context, params map[string]any, progress ProgressFunc, withConfigDrive bool) (any, error) {
	info, err := parseImageInfo(params)
	if err != nil {
		return nil, err
	}
	var iso []byte
	if withConfigDrive {
		if iso, err = m.configDrive(ctx, params["configdrive"]); err != nil {
			return nil, err
		}
	}
	device, err := m.chooseDevice(info.RootDevice)
	if err != nil {
		return nil, err
	}
	if info.Layout != nil {
		return m.preparePartitionImage(ctx, info, device, iso, progress)
	}
	res, err := m.writeImage(ctx, info, device, progress)
	if err != nil {
		return nil, err
	}
	if len(iso) > 0 {
		if _, err := agent.WriteConfigDrive(ctx, device, iso); err != nil {
			return nil, err
		}
	}
	uuids, err := m.readPartitionUUIDs(device)
	if err != nil {
		// As IPA: an image without a readable partition table still deploys; the conductor
		// just gets no root uuid.
		m.log().Warn("no partition UUIDs", logKeyDevice, device, logKeyError, err)
		uuids = map[string]any{"root uuid": ""}
	}
	m.mu.Lock()
	m.partitions = uuids
	m.mu.Unlock()
	msg := fmt.Sprintf("prepare_image: image (%s) written to device %s root_uuid=%s", info.ID, device, uuids["root uuid"])
	return map[string]any{
		"result":        msg,
		"root uuid":     uuids["root uuid"],
		"device":        device,
		"format":        string(res.Format),
		"bytes_written": res.BytesWritten,
		"digest":        res.Digest,
	}, nil
}

// writeImage tries the image URLs in order; only a failed download moves on to the next.
func (m *Machine) writeImage(ctx context.Context, info imageInfo, device string, progress ProgressFunc) (agent.Result, error) {
	var errs []error
	for _, u := range info.URLs {
		res, err := agent.WriteImage(ctx, agent.ImageRequest{
			URL: u, Checksum: info.Checksum, DiskFormat: info.DiskFormat, Authorization: info.Authorization,
			HTTPClient: m.HTTPClient, Logger: m.log(),
		}, device, func(r agent.ProgressReport) {
			progress(api.Progress{BytesDone: r.Written, BytesTotal: r.Total, BytesPerSecond: r.BytesPerSecond})
		})
		if err == nil {
			return res, nil
		}
		errs = append(errs, err)
		var hse *agent.HTTPStatusError
		var sre *agent.ShortReadError
		if ctx.Err() != nil || !(errors.As(err, &hse) || errors.As(err, &sre)) {
			break
		}
		m.log().Warn("image download failed, trying the next URL", logKeyError, err)
	}
	return agent.Result{}, errors.Join(errs...)
}

// configDrive decodes the configdrive parameter: empty, an http(s) URL to fetch, or a
// base64 string of a gzip'd (or plain) ISO.
func (m *Machine) configDrive(ctx context.Context, v any) ([]byte, error) {
	s, ok := v.(string)
	if v != nil && !ok {
		return nil, errors.New("configdrive must be a string (gzip+base64 ISO or URL)")
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var data []byte
	if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
		b, err := m.fetch(ctx, s, maxConfigDrive)
		if err != nil {
			return nil, fmt.Errorf("download config drive: %w", err)
		}
		data = b
	} else {
		return DecodeConfigDrive(s)
	}
	return maybeGunzip(data)
}

// DecodeConfigDrive decodes a config drive as Ironic sends it: base64 of a gzip'd ISO
// (plain base64 of an ISO is accepted too). Whitespace in the base64 text is ignored.
func DecodeConfigDrive(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, s)
	data, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("decode config drive: %w", err)
	}
	return maybeGunzip(data)
}

func maybeGunzip(data []byte) ([]byte, error) {
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return data, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("gunzip config drive: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, maxConfigDrive+1))
	if err != nil {
		return nil, fmt.Errorf("gunzip config drive: %w", err)
	}
	if len(out) > maxConfigDrive {
		return nil, fmt.Errorf("config drive larger than %d bytes", maxConfigDrive)
	}
	return out, nil
}

func (m *Machine) fetch(ctx context.Context, url string, limit int64) ([]byte, error) {
	client := m.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return b, nil
}

// readPartitionUUIDs is IPA's partition_uuids for a whole-disk image: "root uuid" is the
// disk identifier (GPT disk GUID or MBR signature), plus the EFI system partition's UUID
// and every partition's.
func (m *Machine) readPartitionUUIDs(device string) (map[string]any, error) {
	pt, err := agent.PartitionUUIDs(device)
	if err != nil {
		return nil, err
	}
	parts := map[string]string{}
	out := map[string]any{"root uuid": pt.DiskID, "partition_table_type": pt.Type, "partitions": parts}
	for _, p := range pt.Partitions {
		parts[fmt.Sprint(p.Number)] = p.UUID
		if strings.EqualFold(p.Type, espTypeGUID) || strings.EqualFold(p.Type, "ef") {
			if _, ok := out["efi system partition uuid"]; !ok {
				out["efi system partition uuid"] = p.UUID
			}
		}
	}
	return out, nil
}

func (m *Machine) getPartitionUUIDs(_ context.Context, _ map[string]any, _ ProgressFunc) (any, error) {
	m.mu.Lock()
	p := m.partitions
	m.mu.Unlock()
	if p != nil {
		return p, nil
	}
	device, err := m.chooseDevice(nil)
	if err != nil {
		return nil, err
	}
	return m.readPartitionUUIDs(device)
}

func (m *Machine) sync(_ context.Context, _ map[string]any, _ ProgressFunc) (any, error) {
	unix.Sync()
	return nil, nil
}

func (m *Machine) powerOff(_ context.Context, _ map[string]any, _ ProgressFunc) (any, error) {
	if m.PowerOff == nil {
		return nil, errors.New("power off is not available")
	}
	unix.Sync()
	m.stopRAID()
	m.PowerOff()
	return "powering off", nil
}

func (m *Machine) getHardwareInfo(_ context.Context, _ map[string]any, _ ProgressFunc) (any, error) {
	return agent.CollectInventory(agent.InventoryOptions{SysRoot: m.sysRoot(), BootMAC: m.BootMAC})
}
