package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/google/uuid"
)

// PartitionImageRequest is a partition-image deploy: the image of a root file system, the
// partitions to lay out around it and the config drive.
type PartitionImageRequest struct {
	Image  ImageRequest
	Layout LayoutRequest
	// ConfigDrive is the ISO written into the config drive partition (Layout.ConfigDriveMiB
	// is raised to fit it). Empty: no config drive partition.
	ConfigDrive []byte
	// MkfsDir is where mkfs.<format> programs are looked for before $PATH ("" = $PATH only).
	MkfsDir string
}

// PartitionResult describes a written partition image.
type PartitionResult struct {
	Result
	Layout Layout
	// RootUUID is the root file system's UUID (ext2/3/4 and XFS superblocks), else the root
	// partition's PARTUUID: IPA's "root uuid" for a partition image.
	RootUUID string
	// ESPUUID is the EFI system partition's file system UUID (FAT volume id as blkid prints
	// it), empty without an ESP.
	ESPUUID string
	// DiskID is the GPT disk GUID or the MBR signature.
	DiskID string
}

// WritePartitionImage lays out the disk at path as IPA does for a partition image and
// streams the image into the root partition: the layout is planned and the image's size
// checked against the root partition before the disk is touched; then the disk's first
// and last MiB are zeroed, the image written into the root partition (its first MiB held
// back until the checksum is verified), the swap partition made (mkswap's format, written
// here), the ESP and the ephemeral partition formatted (mkfs.vfat -F 32, mkfs.<format>),
// the config drive ISO written, and the partition table written last. On a failure after
// the disk was touched, its first and last MiB and the root partition's first MiB are
// zeroed. The boot loader is installed separately (InstallBootloader).
func WritePartitionImage(ctx context.Context, req PartitionImageRequest, path string, progress Progress) (PartitionResult, error) {
	start := time.Now()
	log := req.Image.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	res, err := writePartitionImage(ctx, req, path, progress)
	res.Duration = time.Since(start)
	if err != nil {
		log.LogAttrs(ctx, slog.LevelInfo, "partition image write failed", slog.String(logKeyURL, redactURL(req.Image.URL)),
			slog.String(logKeyTarget, path), slog.String(logKeyError, err.Error()))
		return res, err
	}
	log.LogAttrs(ctx, slog.LevelInfo, "partition image written", slog.String(logKeyURL, redactURL(req.Image.URL)),
		slog.String(logKeyTarget, path), slog.String(logKeyFormat, string(res.Format)),
		slog.Int64(logKeyBytes, res.BytesWritten), slog.Duration(logKeyElapsed, res.Duration))
	return res, nil
}

func writePartitionImage(ctx context.Context, req PartitionImageRequest, path string, progress Progress) (res PartitionResult, err error) {
	sum, err := parseChecksum(req.Image.Checksum, req.Image.AllowMD5)
	if err != nil {
		return res, err
	}
	declared := strings.ToLower(strings.TrimSpace(req.Image.DiskFormat))
	if declared != "" && declared != "raw" && declared != "qcow2" {
		return res, fmt.Errorf("write image: %w: disk_format %q", ErrUnsupportedImage, req.Image.DiskFormat)
	}
	lreq := req.Layout
	if n := int64(len(req.ConfigDrive)); n > 0 {
		lreq.ConfigDriveMiB = max(lreq.ConfigDriveMiB, roundUp(n, mib)/mib, ConfigDriveMinMiB)
	} else {
		lreq.ConfigDriveMiB = 0
	}
	t, err := openTarget(path)
	if err != nil {
		return res, err
	}
	defer func() {
		if t != nil {
			t.close()
		}
	}()
	layout, err := PlanLayout(lreq, t.diskSize, t.sector)
	if err != nil {
		return res, err
	}
	if p, ok := layout.Part(RoleEphemeral); ok {
		if _, err := mkfsCommand(req.MkfsDir, layout.EphemeralFormat, path, p, "ephemeral0"); err != nil {
			return res, err
		}
	}
	if p, ok := layout.Part(RoleESP); ok {
		if _, err := mkfsCommand(req.MkfsDir, "vfat", path, p, "EFI"); err != nil {
			return res, err
		}
	}
	root, _ := layout.Part(RoleRoot)
	t.window(root.Start, root.Size)
	res.Layout = layout

	src, err := openSource(ctx, req.Image.HTTPClient, req.Image.URL, req.Image.Authorization)
	if err != nil {
		return res, err
	}
	defer src.close()
	head, err := src.head()
	if err != nil {
		return res, err
	}
	res.Format = DetectFormat(head)
	if err := checkDeclared(declared, res.Format); err != nil {
		return res, err
	}
	// Before the disk is touched: an image whose size is known must fit the root partition.
	switch res.Format {
	case FormatQcow2:
		hdr, err := parseQcow2Header(head)
		if err != nil {
			return res, err
		}
		if hdr.Size > root.Size {
			return res, rootTooSmall(hdr.Size, root)
		}
	case FormatRaw:
		if src.size > root.Size {
			return res, rootTooSmall(src.size, root)
		}
	}

	touched := false
	defer func() {
		if err != nil && touched {
			if t == nil {
				var oerr error
				if t, oerr = openTarget(path); oerr != nil {
					err = errors.Join(err, oerr)
					return
				}
				t.window(root.Start, root.Size)
			}
			err = errors.Join(err, t.wipe())
		}
	}()
	touched = true
	if err := t.invalidate(); err != nil {
		return res, err
	}
	if err := writeVerified(ctx, src, head, sum, t, progress, &res.Result); err != nil {
		return res, partitionError(err, root)
	}
	if p, ok := layout.Part(RoleSwap); ok {
		if err := writeSwapHeader(t, p); err != nil {
			return res, err
		}
	}
	if p, ok := layout.Part(RoleConfigDrive); ok {
		if err := writeConfigDriveInto(t, p, req.ConfigDrive); err != nil {
			return res, err
		}
	}
	if err := t.f.Sync(); err != nil {
		return res, fmt.Errorf("sync %s: %w", path, err)
	}
	// mkfs opens the disk itself (mke2fs exclusively): let go of it meanwhile.
	t.close()
	t = nil
	for _, f := range []struct{ role, fs, label string }{{RoleESP, "vfat", "EFI"}, {RoleEphemeral, layout.EphemeralFormat, "ephemeral0"}} {
		p, ok := layout.Part(f.role)
		if !ok {
			continue
		}
		if err := runMkfs(ctx, req.MkfsDir, f.fs, path, p, f.label); err != nil {
			return res, err
		}
	}
	if t, err = openTarget(path); err != nil {
		return res, err
	}
	if err := res.Layout.writeTable(t.f); err != nil {
		return res, err
	}
	if err := t.f.Sync(); err != nil {
		return res, fmt.Errorf("sync %s: %w", path, err)
	}
	if t.block {
		// Best effort: the kernel re-reads the table so the partitions get device nodes.
		_ = rereadPartitions(t.f)
	}
	if pt, err := readPartitionTable(t.f, path, t.sector); err == nil {
		res.DiskID = pt.DiskID
	}
	res.RootUUID = root.UUID
	for _, p := range res.Layout.Partitions {
		switch p.Role {
		case RoleRoot:
			if u := fsUUID(t.f, p.Start); u != "" {
				res.RootUUID = u
			} else {
				res.RootUUID = p.UUID
			}
		case RoleESP:
			res.ESPUUID = fsUUID(t.f, p.Start)
		}
	}
	return res, nil
}

// rootTooSmall is the error for an image larger than its root partition, before the disk
// is touched.
func rootTooSmall(size int64, root PlannedPartition) error {
	return fmt.Errorf("%w: partition image of %d bytes does not fit in the root partition of %d MiB (root_gb)",
		ErrBadLayout, size, root.Size/mib)
}

// partitionError words a TooLargeError from the writers for the root partition.
func partitionError(err error, root PlannedPartition) error {
	var tl *TooLargeError
	if errors.As(err, &tl) {
		return fmt.Errorf("partition image does not fit in the root partition of %d MiB (root_gb): %w", root.Size/mib, err)
	}
	return err
}

// writeSwapHeader makes p a swap area as mkswap does (version 1 header in the first page,
// "SWAPSPACE2" at its end, a random UUID).
func writeSwapHeader(t *target, p PlannedPartition) error {
	page := os.Getpagesize()
	if p.Size < int64(page)*10 {
		return fmt.Errorf("make swap: partition of %d bytes is too small", p.Size)
	}
	b := make([]byte, page)
	le := binary.LittleEndian
	le.PutUint32(b[1024:], 1)                            // version
	le.PutUint32(b[1028:], uint32(p.Size/int64(page)-1)) // last page
	u := uuid.New()
	copy(b[1036:1052], u[:])
	copy(b[page-10:], "SWAPSPACE2")
	if _, err := t.f.WriteAt(b, p.Start); err != nil {
		return fmt.Errorf("make swap: %w", err)
	}
	return nil
}

// writeConfigDriveInto writes the ISO at the start of the config drive partition and
// zeroes the rest of its first MiBs (an old file system there would confuse blkid).
func writeConfigDriveInto(t *target, p PlannedPartition, iso []byte) error {
	if int64(len(iso)) > p.Size {
		return fmt.Errorf("write config drive: ISO of %d bytes does not fit in %d bytes", len(iso), p.Size)
	}
	if _, err := t.f.WriteAt(iso, p.Start); err != nil {
		return fmt.Errorf("write config drive: %w", err)
	}
	if rest := p.Size - int64(len(iso)); rest > 0 {
		if err := t.writeZeros(p.Start+int64(len(iso)), min(rest, headSize)); err != nil {
			return fmt.Errorf("write config drive: %w", err)
		}
	}
	return nil
}

// mkfsCommand is the command that makes a file system of type fs inside partition p of
// the disk at path, without a device node for the partition: mke2fs and mkfs.fat both
// take an offset into the disk. Other file systems are refused.
func mkfsCommand(dir, fs, path string, p PlannedPartition, label string) (*exec.Cmd, error) {
	find := func(names ...string) (string, error) {
		for _, n := range names {
			if dir != "" {
				if c := dir + "/" + n; isExecutable(c) {
					return c, nil
				}
			}
			if c, err := exec.LookPath(n); err == nil {
				return c, nil
			}
		}
		return "", fmt.Errorf("make %s file system: none of %s found in the ramdisk", fs, strings.Join(names, ", "))
	}
	switch fs {
	case "ext2", "ext3", "ext4":
		bin, err := find("mke2fs", "mkfs."+fs)
		if err != nil {
			return nil, err
		}
		return exec.Command(bin, "-q", "-F", "-t", fs, "-L", label, "-E", fmt.Sprintf("offset=%d", p.Start), path, fmt.Sprintf("%dk", p.Size/1024)), nil
	case "vfat", "fat":
		bin, err := find("mkfs.fat", "mkfs.vfat")
		if err != nil {
			return nil, err
		}
		return exec.Command(bin, "-I", "-F", "32", "-n", label, "--offset", fmt.Sprint(p.Start/512), path, fmt.Sprint(p.Size/1024)), nil
	}
	return nil, fmt.Errorf("%w: ephemeral_format %q is not supported (ext2, ext3, ext4, vfat)", ErrBadLayout, fs)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func runMkfs(ctx context.Context, dir, fs, path string, p PlannedPartition, label string) error {
	cmd, err := mkfsCommand(dir, fs, path, p, label)
	if err != nil {
		return err
	}
	c := exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("make %s file system on partition %d (%s): %w: %s", fs, p.Number, p.Role, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// fsUUID reads the UUID of the file system at off as blkid prints it: ext2/3/4 and XFS
// (RFC 4122 text) and FAT (volume id "ABCD-1234"); "" when it knows none of them.
func fsUUID(r interface {
	ReadAt([]byte, int64) (int, error)
}, off int64) string {
	b := make([]byte, 2048)
	if _, err := r.ReadAt(b, off); err != nil {
		return ""
	}
	return fsUUIDFromSuperblock(b)
}

// fsUUIDFromSuperblock decodes the first 2 KiB of a file system.
func fsUUIDFromSuperblock(b []byte) string {
	if len(b) < 2048 {
		return ""
	}
	le := binary.LittleEndian
	if le.Uint16(b[1024+0x38:]) == 0xef53 { // ext2/3/4
		u, err := uuid.FromBytes(b[1024+0x68 : 1024+0x78])
		if err == nil {
			return u.String()
		}
	}
	if string(b[0:4]) == "XFSB" {
		u, err := uuid.FromBytes(b[32:48])
		if err == nil {
			return u.String()
		}
	}
	if b[510] == 0x55 && b[511] == 0xaa {
		switch {
		case string(b[82:87]) == "FAT32":
			id := le.Uint32(b[67:])
			return fmt.Sprintf("%04X-%04X", id>>16, id&0xffff)
		case string(b[54:57]) == "FAT":
			id := le.Uint32(b[39:])
			return fmt.Sprintf("%04X-%04X", id>>16, id&0xffff)
		}
	}
	return ""
}
