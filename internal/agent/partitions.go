package agent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// PartitionTable is what the conductor needs from a written disk for
// get_partition_uuids: the disk identifier and each partition's UUID.
type PartitionTable struct {
	Type       string // "gpt" or "dos"
	DiskID     string // GPT disk GUID, or MBR signature as 8 hex digits
	Partitions []Partition
}

// Partition is one partition as found in the table.
type Partition struct {
	Number int
	Start  int64  // bytes
	Size   int64  // bytes
	UUID   string // PARTUUID as blkid prints it (GPT GUID, or MBR "sig-NN")
	Type   string // GPT type GUID, or MBR type as two hex digits
	Name   string // GPT partition name
}

// PartitionUUIDs reads the GPT (preferred) or MBR of a disk or image file.
func PartitionUUIDs(path string) (PartitionTable, error) {
	f, err := os.Open(path)
	if err != nil {
		return PartitionTable{}, fmt.Errorf("read partition table: %w", err)
	}
	defer f.Close()
	ss := 512
	if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeDevice != 0 {
		if ss, err = sectorSize(f); err != nil {
			return PartitionTable{}, fmt.Errorf("read partition table: %w", err)
		}
	}
	return readPartitionTable(f, path, ss)
}

func readPartitionTable(r io.ReaderAt, path string, ss int) (PartitionTable, error) {
	g, err := readGPT(r, ss)
	if err == nil {
		pt := PartitionTable{Type: "gpt", DiskID: guidString(g.diskGUID)}
		for _, e := range g.partitions() {
			pt.Partitions = append(pt.Partitions, Partition{
				Number: e.index + 1,
				Start:  int64(e.first) * int64(ss),
				Size:   int64(e.last-e.first+1) * int64(ss),
				UUID:   guidString(e.unique),
				Type:   guidString(e.typ),
				Name:   e.name,
			})
		}
		return pt, nil
	}
	if !errors.Is(err, errNoGPT) {
		return PartitionTable{}, fmt.Errorf("read partition table of %s: %w", path, err)
	}
	b := make([]byte, 512)
	if _, err := r.ReadAt(b, 0); err != nil {
		return PartitionTable{}, fmt.Errorf("read partition table of %s: %w", path, err)
	}
	sig, parts, err := parseMBR(b)
	if err != nil {
		return PartitionTable{}, fmt.Errorf("read partition table of %s: %w", path, err)
	}
	pt := PartitionTable{Type: "dos", DiskID: fmt.Sprintf("%08x", sig)}
	for _, p := range parts {
		if p.typ == mbrTypeGPT {
			return PartitionTable{}, fmt.Errorf("read partition table of %s: protective MBR but no valid GPT", path)
		}
		pt.Partitions = append(pt.Partitions, Partition{
			Number: p.number,
			Start:  int64(p.start) * int64(ss),
			Size:   int64(p.sectors) * int64(ss),
			UUID:   fmt.Sprintf("%08x-%02d", sig, p.number),
			Type:   fmt.Sprintf("%02x", p.typ),
		})
	}
	return pt, nil
}

// byName finds a partition by GPT name, case-insensitively.
func (pt PartitionTable) byName(name string) (Partition, bool) {
	for _, p := range pt.Partitions {
		if strings.EqualFold(p.Name, name) {
			return p, true
		}
	}
	return Partition{}, false
}
