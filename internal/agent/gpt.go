package agent

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"unicode/utf16"
)

// GPT layout (UEFI spec, chapter 5).
const (
	gptSignature     = "EFI PART"
	gptHeaderMinSize = 92
	gptEntryMinSize  = 128
	gptMaxEntryBytes = 1 << 20 // sanity bound on the entry array
	gptNameBytes     = 72
)

// errNoGPT means LBA 1 carries no GPT signature.
var errNoGPT = errors.New("no GPT")

// gptTable is a GPT header and its entry array as read from the disk.
type gptTable struct {
	sector      int
	header      []byte // headerSize bytes as on disk
	myLBA       uint64
	altLBA      uint64
	firstUsable uint64
	lastUsable  uint64
	diskGUID    [16]byte
	entryLBA    uint64
	numEntries  uint32
	entrySize   uint32
	entries     []byte
}

// gptEntry is one used partition entry.
type gptEntry struct {
	index  int // 0-based slot; partition number is index+1
	typ    [16]byte
	unique [16]byte
	first  uint64
	last   uint64
	name   string
}

// parseGPTHeader checks a GPT header sector: signature, size, CRC and sane
// entry-array geometry.
func parseGPTHeader(b []byte, sector int) (*gptTable, error) {
	if len(b) < gptHeaderMinSize || string(b[:8]) != gptSignature {
		return nil, errNoGPT
	}
	le := binary.LittleEndian
	size := le.Uint32(b[12:])
	if size < gptHeaderMinSize || int(size) > len(b) || int(size) > sector {
		return nil, fmt.Errorf("parse GPT header: header size %d out of range", size)
	}
	hdr := bytes.Clone(b[:size])
	want := le.Uint32(hdr[16:])
	le.PutUint32(hdr[16:], 0)
	if got := crc32.ChecksumIEEE(hdr); got != want {
		return nil, fmt.Errorf("parse GPT header: header CRC %#08x, want %#08x", got, want)
	}
	g := &gptTable{
		sector:      sector,
		header:      hdr,
		myLBA:       le.Uint64(hdr[24:]),
		altLBA:      le.Uint64(hdr[32:]),
		firstUsable: le.Uint64(hdr[40:]),
		lastUsable:  le.Uint64(hdr[48:]),
		entryLBA:    le.Uint64(hdr[72:]),
		numEntries:  le.Uint32(hdr[80:]),
		entrySize:   le.Uint32(hdr[84:]),
	}
	copy(g.diskGUID[:], hdr[56:72])
	if g.entrySize < gptEntryMinSize || g.entrySize%8 != 0 || uint64(g.numEntries)*uint64(g.entrySize) > gptMaxEntryBytes {
		return nil, fmt.Errorf("parse GPT header: %d entries of %d bytes out of range", g.numEntries, g.entrySize)
	}
	if g.firstUsable > g.lastUsable {
		return nil, fmt.Errorf("parse GPT header: first usable LBA %d after last %d", g.firstUsable, g.lastUsable)
	}
	return g, nil
}

// readGPT reads the primary GPT at LBA 1 and its entries.
func readGPT(r io.ReaderAt, sector int) (*gptTable, error) {
	b := make([]byte, sector)
	if _, err := r.ReadAt(b, int64(sector)); err != nil {
		return nil, fmt.Errorf("read GPT header: %w", err)
	}
	g, err := parseGPTHeader(b, sector)
	if err != nil {
		return nil, err
	}
	if g.myLBA != 1 {
		return nil, fmt.Errorf("parse GPT header: primary header claims LBA %d", g.myLBA)
	}
	g.entries = make([]byte, int(g.numEntries)*int(g.entrySize))
	if _, err := r.ReadAt(g.entries, int64(g.entryLBA)*int64(sector)); err != nil {
		return nil, fmt.Errorf("read GPT entries: %w", err)
	}
	if err := g.checkEntries(); err != nil {
		return nil, err
	}
	for _, e := range g.partitions() {
		if e.last < e.first || e.first < g.firstUsable || e.last > g.lastUsable {
			return nil, fmt.Errorf("parse GPT entries: partition %d spans LBA %d-%d outside usable %d-%d", e.index+1, e.first, e.last, g.firstUsable, g.lastUsable)
		}
	}
	return g, nil
}

func (g *gptTable) checkEntries() error {
	want := binary.LittleEndian.Uint32(g.header[88:])
	if got := crc32.ChecksumIEEE(g.entries); got != want {
		return fmt.Errorf("parse GPT entries: CRC %#08x, want %#08x", got, want)
	}
	return nil
}

func (g *gptTable) entrySectors() uint64 {
	n := uint64(g.numEntries) * uint64(g.entrySize)
	return (n + uint64(g.sector) - 1) / uint64(g.sector)
}

// partitions lists the used entries.
func (g *gptTable) partitions() []gptEntry {
	var out []gptEntry
	for i := 0; i < int(g.numEntries); i++ {
		e := g.entries[i*int(g.entrySize) : (i+1)*int(g.entrySize)]
		var ent gptEntry
		copy(ent.typ[:], e[0:16])
		if ent.typ == ([16]byte{}) {
			continue
		}
		ent.index = i
		copy(ent.unique[:], e[16:32])
		ent.first = binary.LittleEndian.Uint64(e[32:])
		ent.last = binary.LittleEndian.Uint64(e[40:])
		ent.name = decodeGPTName(e[56 : 56+gptNameBytes])
		out = append(out, ent)
	}
	return out
}

// freeSlot is the first unused entry index, -1 if none.
func (g *gptTable) freeSlot() int {
	for i := 0; i < int(g.numEntries); i++ {
		e := g.entries[i*int(g.entrySize):]
		if bytes.Equal(e[:16], make([]byte, 16)) {
			return i
		}
	}
	return -1
}

func (g *gptTable) setEntry(e gptEntry) {
	b := g.entries[e.index*int(g.entrySize) : (e.index+1)*int(g.entrySize)]
	clear(b)
	copy(b[0:16], e.typ[:])
	copy(b[16:32], e.unique[:])
	binary.LittleEndian.PutUint64(b[32:], e.first)
	binary.LittleEndian.PutUint64(b[40:], e.last)
	copy(b[56:56+gptNameBytes], encodeGPTName(e.name))
}

// write stores the table for a disk of diskSectors sectors: the primary
// header and entries where they were, the backup entries and header at the
// very end of the disk, both with fresh CRCs. The last usable LBA follows
// the backup entries.
func (g *gptTable) write(w io.WriterAt, diskSectors uint64) error {
	es := g.entrySectors()
	if diskSectors < 2+2*es+1 {
		return fmt.Errorf("write GPT: disk of %d sectors too small", diskSectors)
	}
	lastUsable := diskSectors - 2 - es
	for _, p := range g.partitions() {
		if p.last > lastUsable {
			return fmt.Errorf("write GPT: partition %d ends at LBA %d, past the last usable LBA %d", p.index+1, p.last, lastUsable)
		}
	}
	le := binary.LittleEndian
	g.lastUsable = lastUsable
	g.altLBA = diskSectors - 1
	le.PutUint32(g.header[88:], crc32.ChecksumIEEE(g.entries))
	le.PutUint64(g.header[48:], lastUsable)

	primary := bytes.Clone(g.header)
	le.PutUint64(primary[24:], 1)
	le.PutUint64(primary[32:], diskSectors-1)
	le.PutUint64(primary[72:], g.entryLBA)
	sealGPTHeader(primary)

	backup := bytes.Clone(g.header)
	backupEntries := diskSectors - 1 - es
	le.PutUint64(backup[24:], diskSectors-1)
	le.PutUint64(backup[32:], 1)
	le.PutUint64(backup[72:], backupEntries)
	sealGPTHeader(backup)

	ss := int64(g.sector)
	padded := make([]byte, int64(es)*ss)
	copy(padded, g.entries)
	writes := []struct {
		what string
		b    []byte
		lba  uint64
	}{
		{"backup GPT entries", padded, backupEntries},
		{"backup GPT header", sectorOf(backup, g.sector), diskSectors - 1},
		{"primary GPT entries", padded, g.entryLBA},
		{"primary GPT header", sectorOf(primary, g.sector), 1},
	}
	for _, wr := range writes {
		if _, err := w.WriteAt(wr.b, int64(wr.lba)*ss); err != nil {
			return fmt.Errorf("write %s: %w", wr.what, err)
		}
	}
	g.header = primary
	return nil
}

func sealGPTHeader(h []byte) {
	binary.LittleEndian.PutUint32(h[16:], 0)
	binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h))
}

func sectorOf(b []byte, sector int) []byte {
	s := make([]byte, sector)
	copy(s, b)
	return s
}

func decodeGPTName(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

func encodeGPTName(s string) []byte {
	b := make([]byte, gptNameBytes)
	for i, c := range utf16.Encode([]rune(s)) {
		if 2*i+2 > len(b) {
			break
		}
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// guidString formats a GPT GUID (mixed-endian on disk) the way blkid prints
// PARTUUID: lower-case 8-4-4-4-12.
func guidString(g [16]byte) string {
	le := binary.LittleEndian
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", le.Uint32(g[0:]), le.Uint16(g[4:]), le.Uint16(g[6:]), g[8:10], g[10:16])
}

// parseGUID is the inverse of guidString (case-insensitive).
func parseGUID(s string) ([16]byte, error) {
	var g [16]byte
	h := strings.ReplaceAll(s, "-", "")
	if len(h) != 32 || len(s) != 36 {
		return g, fmt.Errorf("parse GUID %q: bad length", s)
	}
	raw, err := hex.DecodeString(h)
	if err != nil {
		return g, fmt.Errorf("parse GUID %q: %w", s, err)
	}
	// raw is big-endian text order; swap the first three fields.
	g[0], g[1], g[2], g[3] = raw[3], raw[2], raw[1], raw[0]
	g[4], g[5] = raw[5], raw[4]
	g[6], g[7] = raw[7], raw[6]
	copy(g[8:], raw[8:])
	return g, nil
}

// newGUID is a random (version 4) GUID in on-disk byte order.
func newGUID() ([16]byte, error) {
	var g [16]byte
	if _, err := rand.Read(g[:]); err != nil {
		return g, fmt.Errorf("generate GUID: %w", err)
	}
	g[7] = g[7]&0x0f | 0x40 // version in the high nibble of the LE third field
	g[8] = g[8]&0x3f | 0x80 // RFC 4122 variant
	return g, nil
}

// fixProtectiveMBR sets the size of a protective MBR's single 0xEE entry to
// cover the disk, as sgdisk -e does after moving the backup header.
func fixProtectiveMBR(rw interface {
	io.ReaderAt
	io.WriterAt
}, diskSectors uint64) error {
	b := make([]byte, 512)
	if _, err := rw.ReadAt(b, 0); err != nil {
		return fmt.Errorf("read protective MBR: %w", err)
	}
	if b[510] != 0x55 || b[511] != 0xaa || b[446+4] != 0xee {
		return nil
	}
	for i := 1; i < 4; i++ {
		if b[446+16*i+4] != 0 {
			return nil // hybrid MBR: leave it alone
		}
	}
	size := min(diskSectors-1, 0xffffffff)
	binary.LittleEndian.PutUint32(b[446+12:], uint32(size))
	if _, err := rw.WriteAt(b, 0); err != nil {
		return fmt.Errorf("write protective MBR: %w", err)
	}
	return nil
}

// fixGPTAfterWrite moves an image's backup GPT to the end of a larger disk.
// A disk without a valid GPT is left alone.
func fixGPTAfterWrite(t *target) error {
	g, err := readGPT(t.f, t.sector)
	if err != nil {
		return nil
	}
	diskSectors := uint64(t.size) / uint64(t.sector)
	if g.altLBA == diskSectors-1 {
		return nil
	}
	oldAlt := g.altLBA
	if err := g.write(t.f, diskSectors); err != nil {
		return fmt.Errorf("relocate backup GPT on %s: %w", t.path, err)
	}
	if err := fixProtectiveMBR(t.f, diskSectors); err != nil {
		return fmt.Errorf("relocate backup GPT on %s: %w", t.path, err)
	}
	if oldAlt > 1 && oldAlt < diskSectors-1 {
		// Drop the stale backup header at the image's end.
		if _, err := t.f.WriteAt(make([]byte, t.sector), int64(oldAlt)*int64(t.sector)); err != nil {
			return fmt.Errorf("clear old backup GPT on %s: %w", t.path, err)
		}
	}
	if err := t.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", t.path, err)
	}
	return nil
}
