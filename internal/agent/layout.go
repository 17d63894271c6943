package agent

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Partition roles of a partition-image deploy, as IPA's disk utilities name them in the
// partition dictionary they return.
const (
	RoleESP         = "efi system partition"
	RoleBIOSBoot    = "BIOS Boot partition"
	RoleEphemeral   = "ephemeral"
	RoleSwap        = "swap"
	RoleConfigDrive = "configdrive"
	RoleRoot        = "root"
)

// Sizes Ironic uses for the boot partitions (ironic-lib's [disk_utils]
// efi_system_partition_size and bios_boot_partition_size) and the smallest config drive.
const (
	ESPSizeMiB         = 550
	BIOSBootSizeMiB    = 1
	ConfigDriveMinMiB  = 64
	mib                = 1 << 20
	layoutAlignment    = mib
	maxMBRPrimaries    = 4
	defaultEphemeralFS = "ext4"
)

// GPT partition types (UEFI spec; freedesktop's discoverable partitions for Linux).
const (
	gptTypeESP      = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
	gptTypeBIOSBoot = "21686148-6449-6e6f-744e-656564454649"
	gptTypeLinux    = "0fc63daf-8483-4772-8e79-3d69d8477de4"
	gptTypeSwap     = "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f"
)

// MBR partition types.
const (
	mbrTypeSwap = 0x82
	mbrTypeESP  = 0xef
)

// ErrBadLayout is wrapped by every error about partition-image parameters: unknown
// disk_label or boot mode, negative sizes, too many MBR partitions, a disk too small.
var ErrBadLayout = errors.New("invalid partition layout")

// LayoutRequest is the partition layout of a partition-image deploy, from image_info as
// Ironic sends it (root_mb, swap_mb, ephemeral_mb, ephemeral_format, disk_label,
// deploy_boot_mode).
type LayoutRequest struct {
	// DiskLabel is "gpt" or "msdos"; "" chooses as Ironic does: gpt for UEFI, msdos for BIOS.
	DiskLabel string
	// BootMode is "bios" or "uefi" ("" = bios).
	BootMode string
	// RootMiB is the root partition's size; 0 takes the rest of the disk.
	RootMiB int64
	// SwapMiB and EphemeralMiB add those partitions when > 0.
	SwapMiB      int64
	EphemeralMiB int64
	// EphemeralFormat is the ephemeral partition's file system ("" = ext4).
	EphemeralFormat string
	// ConfigDriveMiB adds a config drive partition when > 0 (at least ConfigDriveMinMiB).
	ConfigDriveMiB int64
}

// PlannedPartition is one partition of a layout.
type PlannedPartition struct {
	Number int
	Role   string
	Start  int64 // bytes
	Size   int64 // bytes
	UUID   string
}

// Layout is a computed partition table: where every partition goes on a disk.
type Layout struct {
	DiskLabel  string // "gpt" or "msdos"
	BootMode   string // "bios" or "uefi"
	DiskSize   int64
	Sector     int
	Partitions []PlannedPartition
	// EphemeralFormat is the ephemeral partition's file system.
	EphemeralFormat string
}

// Part returns the partition with a role.
func (l Layout) Part(role string) (PlannedPartition, bool) {
	for _, p := range l.Partitions {
		if p.Role == role {
			return p, true
		}
	}
	return PlannedPartition{}, false
}

// PlanLayout lays the partitions out on a disk of diskSize bytes as IPA does: the boot
// partition (ESP for UEFI, a BIOS boot partition for BIOS on GPT) first, then ephemeral,
// swap and the config drive, and the root partition last, so tools that grow the root
// file system (cloud-init's growpart) can extend it to the end of the disk. Every
// partition starts on a MiB boundary.
func PlanLayout(req LayoutRequest, diskSize int64, sector int) (Layout, error) {
	if sector <= 0 {
		sector = 512
	}
	l := Layout{DiskSize: diskSize, Sector: sector}
	switch m := strings.ToLower(strings.TrimSpace(req.BootMode)); m {
	case "", "bios":
		l.BootMode = "bios"
	case "uefi":
		l.BootMode = "uefi"
	default:
		return Layout{}, fmt.Errorf("%w: boot mode %q is neither bios nor uefi", ErrBadLayout, req.BootMode)
	}
	switch d := strings.ToLower(strings.TrimSpace(req.DiskLabel)); d {
	case "":
		l.DiskLabel = "msdos"
		if l.BootMode == "uefi" {
			l.DiskLabel = "gpt"
		}
	case "gpt", "msdos":
		l.DiskLabel = d
	default:
		return Layout{}, fmt.Errorf("%w: disk_label %q is neither gpt nor msdos", ErrBadLayout, req.DiskLabel)
	}
	for _, v := range []struct {
		name string
		n    int64
	}{{"root_mb", req.RootMiB}, {"swap_mb", req.SwapMiB}, {"ephemeral_mb", req.EphemeralMiB}, {"configdrive_mb", req.ConfigDriveMiB}} {
		if v.n < 0 {
			return Layout{}, fmt.Errorf("%w: %s is negative (%d)", ErrBadLayout, v.name, v.n)
		}
	}
	l.EphemeralFormat = strings.TrimSpace(req.EphemeralFormat)
	if l.EphemeralFormat == "" {
		l.EphemeralFormat = defaultEphemeralFS
	}
	if !validFSName(l.EphemeralFormat) {
		return Layout{}, fmt.Errorf("%w: ephemeral_format %q is not a file system name", ErrBadLayout, req.EphemeralFormat)
	}
	type want struct {
		role string
		mib  int64
	}
	var wants []want
	if l.BootMode == "uefi" {
		wants = append(wants, want{RoleESP, ESPSizeMiB})
	} else if l.DiskLabel == "gpt" {
		wants = append(wants, want{RoleBIOSBoot, BIOSBootSizeMiB})
	}
	if req.EphemeralMiB > 0 {
		wants = append(wants, want{RoleEphemeral, req.EphemeralMiB})
	}
	if req.SwapMiB > 0 {
		wants = append(wants, want{RoleSwap, req.SwapMiB})
	}
	if req.ConfigDriveMiB > 0 {
		wants = append(wants, want{RoleConfigDrive, max(req.ConfigDriveMiB, ConfigDriveMinMiB)})
	}
	wants = append(wants, want{RoleRoot, req.RootMiB})
	if l.DiskLabel == "msdos" && len(wants) > maxMBRPrimaries {
		roles := make([]string, len(wants))
		for i, w := range wants {
			roles[i] = w.role
		}
		return Layout{}, fmt.Errorf("%w: an msdos disk label holds %d primary partitions, this layout needs %d (%s): use disk_label gpt",
			ErrBadLayout, maxMBRPrimaries, len(wants), strings.Join(roles, ", "))
	}
	// The usable area: after the first MiB, before the backup GPT (33 sectors at 512 bytes,
	// kept off the last MiB altogether so alignment never collides with it).
	end := diskSize / layoutAlignment * layoutAlignment
	if l.DiskLabel == "gpt" || end == diskSize {
		end -= layoutAlignment
	}
	if l.DiskLabel == "msdos" {
		end = min(end, int64(mbrMaxSectors-1)*int64(sector)/layoutAlignment*layoutAlignment)
	}
	off := int64(layoutAlignment)
	for i, w := range wants {
		size := w.mib * mib
		if w.role == RoleRoot && size == 0 {
			size = end - off
		}
		if size <= 0 || off+size > end {
			return Layout{}, fmt.Errorf("%w: the disk of %d MiB has no room for the %s of %d MiB (%d MiB left after %d MiB of other partitions and the partition table)",
				ErrBadLayout, diskSize/mib, roleLabel(w.role), size/mib, max(0, end-off)/mib, off/mib)
		}
		l.Partitions = append(l.Partitions, PlannedPartition{Number: i + 1, Role: w.role, Start: off, Size: size})
		off += size
	}
	return l, nil
}

// roleLabel names a role in an error message.
func roleLabel(role string) string {
	if strings.HasSuffix(strings.ToLower(role), "partition") {
		return role
	}
	return role + " partition"
}

// validFSName accepts what mkfs.<name> can be: letters, digits and dots.
func validFSName(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.') {
			return false
		}
	}
	return true
}

// writeTable writes the layout's partition table onto w, filling in each partition's UUID
// (GPT unique GUID, or MBR "signature-NN"). The GPT gets a protective MBR and a backup
// at the end of the disk; the MBR keeps sector 0's first 440 bytes (the boot code area,
// which grub-install fills later) zero.
func (l *Layout) writeTable(w io.WriterAt) error {
	ss := int64(l.Sector)
	diskSectors := uint64(l.DiskSize / ss)
	mbr := make([]byte, 512)
	mbr[510], mbr[511] = 0x55, 0xaa
	if l.DiskLabel == "msdos" {
		var sig [4]byte
		if _, err := rand.Read(sig[:]); err != nil {
			return fmt.Errorf("write partition table: %w", err)
		}
		s := binary.LittleEndian.Uint32(sig[:])
		copy(mbr[mbrSignatureOff:], sig[:])
		for i := range l.Partitions {
			p := &l.Partitions[i]
			typ := byte(mbrTypeLinux)
			switch p.Role {
			case RoleESP:
				typ = mbrTypeESP
			case RoleSwap:
				typ = mbrTypeSwap
			}
			putMBRPartition(mbr, mbrPartition{
				number: p.Number, typ: typ, boot: p.Role == RoleRoot && l.BootMode == "bios",
				start: uint32(p.Start / ss), sectors: uint32(p.Size / ss),
			})
			p.UUID = fmt.Sprintf("%08x-%02d", s, p.Number)
		}
		if _, err := w.WriteAt(sectorOf(mbr, l.Sector), 0); err != nil {
			return fmt.Errorf("write MBR: %w", err)
		}
		return nil
	}
	putMBRPartition(mbr, mbrPartition{number: 1, typ: mbrTypeGPT, start: 1, sectors: uint32(min(diskSectors-1, 0xffffffff))})
	g := &gptTable{sector: l.Sector, header: make([]byte, gptHeaderMinSize), entryLBA: 2, numEntries: 128, entrySize: gptEntryMinSize}
	g.entries = make([]byte, int(g.numEntries)*int(g.entrySize))
	firstUsable := 2 + g.entrySectors()
	h := g.header
	copy(h, gptSignature)
	binary.LittleEndian.PutUint32(h[8:], 0x00010000)
	binary.LittleEndian.PutUint32(h[12:], gptHeaderMinSize)
	binary.LittleEndian.PutUint64(h[40:], firstUsable)
	diskGUID, err := newGUID()
	if err != nil {
		return err
	}
	copy(h[56:72], diskGUID[:])
	binary.LittleEndian.PutUint32(h[80:], g.numEntries)
	binary.LittleEndian.PutUint32(h[84:], g.entrySize)
	for i := range l.Partitions {
		p := &l.Partitions[i]
		typ := gptTypeLinux
		switch p.Role {
		case RoleESP:
			typ = gptTypeESP
		case RoleBIOSBoot:
			typ = gptTypeBIOSBoot
		case RoleSwap:
			typ = gptTypeSwap
		}
		t, err := parseGUID(typ)
		if err != nil {
			return err
		}
		u, err := newGUID()
		if err != nil {
			return err
		}
		name := p.Role
		if p.Role == RoleConfigDrive {
			name = "config-2"
		}
		g.setEntry(gptEntry{index: p.Number - 1, typ: t, unique: u, first: uint64(p.Start / ss), last: uint64((p.Start+p.Size)/ss) - 1, name: name})
		p.UUID = guidString(u)
	}
	if _, err := w.WriteAt(sectorOf(mbr, l.Sector), 0); err != nil {
		return fmt.Errorf("write protective MBR: %w", err)
	}
	if err := g.write(w, diskSectors); err != nil {
		return fmt.Errorf("write partition table: %w", err)
	}
	return nil
}
