package agent

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/lima-vm/go-qcow2reader/image/qcow2"
)

func FuzzRootDeviceHints(f *testing.F) {
	for _, s := range []string{
		`{"size": 10}`, `{"size": ">= 10"}`, `{"model": "<in> samsung"}`, `{"serial": "<or> a <or> b"}`,
		`{"name": "sda", "rotational": true}`, `{"wwn": "s!= 0x5000"}`, `{"size": "<or> 1 <or> 2"}`,
		`{"model": "<all-in> a b"}`, `{"hctl": "s>= 0:0"}`, `{"size": "="}`, `{"rotational": "yes"}`,
	} {
		f.Add(s)
	}
	disks := []Disk{
		{Name: "/dev/sda", Size: 10 * gib, Model: "Samsung", Serial: "a", WWN: "0x5000", Rotational: true, HCTL: "0:0:0:0"},
		{Name: "/dev/vda", Size: 3 * gib},
	}
	f.Fuzz(func(t *testing.T, blob string) {
		var raw map[string]any
		if json.Unmarshal([]byte(blob), &raw) != nil {
			return
		}
		hs, err := ParseRootDeviceHints(raw)
		if err != nil {
			return
		}
		for _, d := range disks {
			hs.Match(d)
		}
		d, err := ChooseRootDevice(disks, raw)
		if err == nil && len(raw) > 0 && !hs.Match(d) {
			t.Fatalf("chose %s which does not match %v", d.Name, raw)
		}
		if err != nil && len(raw) > 0 && !errors.Is(err, ErrNoDevice) {
			t.Fatalf("parsed hints %v fail to choose with %v", raw, err)
		}
	})
}

// qcow2Seed is a minimal valid qcow2 v3 header (no L1 table content).
func qcow2Seed(size uint64, backing bool) []byte {
	b := make([]byte, 512)
	copy(b, magicQcow2)
	be := binary.BigEndian
	be.PutUint32(b[4:], 3)
	if backing {
		be.PutUint64(b[8:], 200)
		be.PutUint32(b[16:], 4)
	}
	be.PutUint32(b[20:], 16)
	be.PutUint64(b[24:], size)
	l1 := (size + (1<<16)*(1<<13) - 1) / ((1 << 16) * (1 << 13))
	be.PutUint32(b[36:], uint32(l1))
	be.PutUint64(b[40:], 256)
	be.PutUint32(b[100:], 104)
	return b
}

// FuzzImageFormat feeds arbitrary leading bytes to format detection, the
// qcow2 header check and, when the header passes, the qcow2 reader itself
// with the same bounded reads the writer makes.
func FuzzImageFormat(f *testing.F) {
	f.Add(qcow2Seed(1<<20, false))
	f.Add(qcow2Seed(1<<30, true))
	f.Add([]byte{0x1f, 0x8b, 8, 0})
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd})
	f.Add([]byte("KDMV"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		format := DetectFormat(data)
		h, err := parseQcow2Header(data)
		if err != nil {
			return
		}
		if format != FormatQcow2 {
			t.Fatalf("header accepted but detected as %s", format)
		}
		if h.Size > 64<<20 {
			return // the writer refuses images larger than the target first
		}
		img, err := qcow2.Open(bytes.NewReader(data), refuseBacking)
		if err != nil || img.Readable() != nil {
			return
		}
		buf := make([]byte, 64<<10)
		for off := int64(0); off < h.Size; {
			ext, err := img.Extent(off, min(4<<20, h.Size-off))
			if err != nil || ext.Length <= 0 {
				return
			}
			if ext.Allocated && !ext.Zero {
				if _, err := img.ReadAt(buf[:min(int64(len(buf)), ext.Length)], off); err != nil && !errors.Is(err, io.EOF) {
					return
				}
			}
			off += ext.Length
		}
	})
}

// FuzzPartitionTable feeds arbitrary disk heads to the GPT/MBR reader used
// by PartitionUUIDs, EraseMetadata and the config drive.
func FuzzPartitionTable(f *testing.F) {
	f.Add(gptSeed(f))
	im := make([]byte, 512)
	im[510], im[511] = 0x55, 0xaa
	im[446+4] = 0x83
	binary.LittleEndian.PutUint32(im[446+8:], 2048)
	binary.LittleEndian.PutUint32(im[446+12:], 4096)
	f.Add(im)
	f.Add(append(make([]byte, 512), []byte(gptSignature)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		pt, err := readPartitionTable(bytes.NewReader(data), "fuzz", 512)
		if err != nil {
			return
		}
		for _, p := range pt.Partitions {
			if p.Size < 0 {
				t.Fatalf("negative partition size %+v", p)
			}
		}
	})
}

// memDisk is an io.WriterAt over a byte slice.
type memDisk []byte

func (m memDisk) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m)) {
		return 0, io.ErrShortWrite
	}
	return copy(m[off:], p), nil
}

// gptSeed is a small valid GPT disk (4 entries, one partition) of 4 KiB.
func gptSeed(f *testing.F) []byte {
	b, err := buildGPTSeed()
	if err != nil {
		f.Fatal(err)
	}
	return b
}

func gptSeedBytes() []byte { b, _ := buildGPTSeed(); return b }

func buildGPTSeed() ([]byte, error) {
	const sectors = 8
	hdr := make([]byte, 92)
	copy(hdr, gptSignature)
	le := binary.LittleEndian
	le.PutUint32(hdr[8:], 0x00010000)
	le.PutUint32(hdr[12:], 92)
	le.PutUint64(hdr[40:], 4)
	le.PutUint64(hdr[48:], sectors-4)
	le.PutUint64(hdr[72:], 2)
	le.PutUint32(hdr[80:], 4)
	le.PutUint32(hdr[84:], 128)
	g := &gptTable{sector: 512, header: hdr, firstUsable: 4, entryLBA: 2, numEntries: 4, entrySize: 128, entries: make([]byte, 512)}
	typ, _ := parseGUID(linuxFilesystemGUID)
	g.setEntry(gptEntry{index: 0, typ: typ, unique: typ, first: 4, last: 5, name: "root"})
	disk := make(memDisk, sectors*512)
	if err := g.write(disk, sectors); err != nil {
		return nil, err
	}
	if _, err := readPartitionTable(bytes.NewReader(disk), "seed", 512); err != nil {
		return nil, err
	}
	return disk, nil
}
