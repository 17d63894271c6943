package agent

import (
	"context"
	"errors"
	"fmt"
)

const (
	configDriveLabel   = "config-2"
	configDriveMinSize = 64 << 20
	partitionAlign     = 1 << 20
)

// linuxFilesystemGUID is the GPT type sgdisk gives 8300 partitions.
const linuxFilesystemGUID = "0fc63daf-8483-4772-8e79-3d69d8477de4"

// WriteConfigDrive puts the config drive ISO on target, which already holds
// the deployed image. Like IPA it reuses an existing partition named
// config-2 when large enough; otherwise it creates one at the end of the
// disk, after the image's last partition, sized to the ISO rounded up to a
// MiB and at least 64 MiB. On GPT the new entry is named config-2 and both
// headers are rewritten with fresh CRCs (the backup moved to the end of the
// disk); on MBR it is a primary partition of type 0x83, and the config-2 label
// is the ISO's volume label. The rest of the partition is zeroed.
func WriteConfigDrive(ctx context.Context, target string, iso []byte) (Partition, error) {
	if len(iso) == 0 {
		return Partition{}, fmt.Errorf("write config drive: empty ISO")
	}
	t, err := openTarget(target)
	if err != nil {
		return Partition{}, fmt.Errorf("write config drive: %w", err)
	}
	defer t.close()
	p, err := placeConfigDrive(t, int64(len(iso)))
	if err != nil {
		return Partition{}, fmt.Errorf("write config drive on %s: %w", target, err)
	}
	if err := ctx.Err(); err != nil {
		return Partition{}, err
	}
	if _, err := t.f.WriteAt(iso, p.Start); err != nil {
		return Partition{}, fmt.Errorf("write config drive on %s: %w", target, err)
	}
	if rest := p.Size - int64(len(iso)); rest > 0 {
		t.head = []byte{} // nothing held back: write straight to the disk
		if err := t.zeroRange(p.Start+int64(len(iso)), rest); err != nil {
			return Partition{}, fmt.Errorf("write config drive on %s: %w", target, err)
		}
	}
	if err := t.f.Sync(); err != nil {
		return Partition{}, fmt.Errorf("write config drive on %s: sync: %w", target, err)
	}
	if t.block {
		// Best effort: the kernel may still hold the disk open elsewhere.
		_ = rereadPartitions(t.f)
	}
	return p, nil
}

// placeConfigDrive finds or creates the partition and writes the table.
func placeConfigDrive(t *target, isoSize int64) (Partition, error) {
	pt, err := readPartitionTable(t.f, t.path, t.sector)
	if err != nil {
		return Partition{}, err
	}
	if p, ok := pt.byName(configDriveLabel); ok && p.Size >= isoSize {
		return p, nil
	}
	ss := int64(t.sector)
	size := roundUp(max(isoSize, configDriveMinSize), partitionAlign)
	diskSectors := uint64(t.size / ss)
	if pt.Type == "gpt" {
		return addGPTConfigDrive(t, diskSectors, size)
	}
	return addMBRConfigDrive(t, pt, diskSectors, size)
}

func addGPTConfigDrive(t *target, diskSectors uint64, size int64) (Partition, error) {
	g, err := readGPT(t.f, t.sector)
	if err != nil {
		return Partition{}, err
	}
	ss := uint64(t.sector)
	align := uint64(partitionAlign) / ss
	lastUsable := diskSectors - 2 - g.entrySectors()
	end := (lastUsable+1)/align*align - 1
	sectors := uint64(size) / ss
	if end+1 < sectors {
		return Partition{}, fmt.Errorf("no room for a %d MiB config drive", size>>20)
	}
	start := end + 1 - sectors
	var lastEnd uint64
	for _, p := range g.partitions() {
		lastEnd = max(lastEnd, p.last)
	}
	if start <= lastEnd || start < g.firstUsable {
		return Partition{}, fmt.Errorf("no room for a %d MiB config drive after the last partition (ends at byte %d, disk is %d bytes)", size>>20, (lastEnd+1)*ss, t.size)
	}
	slot := g.freeSlot()
	if slot < 0 {
		return Partition{}, errors.New("no free GPT entry for the config drive")
	}
	typ, err := parseGUID(linuxFilesystemGUID)
	if err != nil {
		return Partition{}, err
	}
	unique, err := newGUID()
	if err != nil {
		return Partition{}, err
	}
	e := gptEntry{index: slot, typ: typ, unique: unique, first: start, last: end, name: configDriveLabel}
	g.setEntry(e)
	oldAlt := g.altLBA
	if err := g.write(t.f, diskSectors); err != nil {
		return Partition{}, err
	}
	if err := fixProtectiveMBR(t.f, diskSectors); err != nil {
		return Partition{}, err
	}
	if oldAlt > 1 && oldAlt < diskSectors-1 && (oldAlt < start || oldAlt > end) {
		if _, err := t.f.WriteAt(make([]byte, t.sector), int64(oldAlt*ss)); err != nil {
			return Partition{}, fmt.Errorf("clear old backup GPT: %w", err)
		}
	}
	return Partition{
		Number: slot + 1, Start: int64(start * ss), Size: int64(sectors * ss),
		UUID: guidString(unique), Type: linuxFilesystemGUID, Name: configDriveLabel,
	}, nil
}

func addMBRConfigDrive(t *target, pt PartitionTable, diskSectors uint64, size int64) (Partition, error) {
	ss := uint64(t.sector)
	b := make([]byte, 512)
	if _, err := t.f.ReadAt(b, 0); err != nil {
		return Partition{}, fmt.Errorf("read MBR: %w", err)
	}
	used := map[int]bool{}
	var lastEnd uint64
	for _, p := range pt.Partitions {
		used[p.Number] = true
		lastEnd = max(lastEnd, uint64(p.Start+p.Size)/ss-1)
	}
	number := 0
	for n := 1; n <= 4; n++ {
		if !used[n] {
			number = n
			break
		}
	}
	if number == 0 {
		return Partition{}, errors.New("all four primary MBR partitions are in use")
	}
	align := uint64(partitionAlign) / ss
	limit := min(diskSectors, mbrMaxSectors)
	end := limit/align*align - 1
	sectors := uint64(size) / ss
	if end+1 < sectors {
		return Partition{}, fmt.Errorf("no room for a %d MiB config drive", size>>20)
	}
	start := end + 1 - sectors
	if start <= lastEnd || start < align {
		return Partition{}, fmt.Errorf("no room for a %d MiB config drive after the last partition (ends at byte %d, usable MBR space %d bytes)", size>>20, (lastEnd+1)*ss, limit*ss)
	}
	putMBRPartition(b, mbrPartition{number: number, typ: mbrTypeLinux, start: uint32(start), sectors: uint32(sectors)})
	if _, err := t.f.WriteAt(b, 0); err != nil {
		return Partition{}, fmt.Errorf("write MBR: %w", err)
	}
	sig := pt.DiskID
	return Partition{
		Number: number, Start: int64(start * ss), Size: int64(sectors * ss),
		UUID: fmt.Sprintf("%s-%02d", sig, number), Type: fmt.Sprintf("%02x", mbrTypeLinux),
	}, nil
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }
