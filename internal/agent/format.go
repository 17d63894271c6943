package agent

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Format is an image container or compression detected from magic bytes.
type Format string

// Formats the agent recognises. Only raw, the compressed raws and qcow2 are
// written; the others are recognised so they are refused by name rather than
// written to the disk as if they were raw.
const (
	FormatRaw   Format = "raw"
	FormatGzip  Format = "gzip"
	FormatZstd  Format = "zstd"
	FormatXz    Format = "xz"
	FormatQcow2 Format = "qcow2"
	FormatBzip2 Format = "bzip2"
	FormatVMDK  Format = "vmdk"
	FormatVHDX  Format = "vhdx"
	FormatVDI   Format = "vdi"
)

// headLen is how many leading bytes detection looks at.
const headLen = 4096

var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	magicQcow2 = []byte{'Q', 'F', 'I', 0xfb}
	magicBzip2 = []byte("BZh")
	magicVMDK  = []byte("KDMV")
	magicVHDX  = []byte("vhdxfile")
	magicVDI   = []byte{0x7f, 0x10, 0xda, 0xbe} // little-endian 0xbeda107f at 0x40
)

// DetectFormat names the format of an image from its first bytes (up to
// 4 KiB). Anything unrecognised is raw.
func DetectFormat(head []byte) Format {
	switch {
	case bytes.HasPrefix(head, magicQcow2):
		return FormatQcow2
	case bytes.HasPrefix(head, magicGzip):
		return FormatGzip
	case bytes.HasPrefix(head, magicZstd):
		return FormatZstd
	case bytes.HasPrefix(head, magicXz):
		return FormatXz
	case bytes.HasPrefix(head, magicBzip2) && len(head) >= 4 && head[3] >= '1' && head[3] <= '9':
		return FormatBzip2
	case bytes.HasPrefix(head, magicVMDK):
		return FormatVMDK
	case bytes.HasPrefix(head, magicVHDX):
		return FormatVHDX
	case len(head) >= 0x44 && bytes.Equal(head[0x40:0x44], magicVDI):
		return FormatVDI
	}
	return FormatRaw
}

// qcow2 limits, from QEMU's block/qcow2.h.
const (
	qcow2MinClusterBits = 9
	qcow2MaxClusterBits = 21
	qcow2MaxL1Bytes     = 32 << 20
)

// qcow2 incompatible feature bits.
const (
	qcow2IncompatDirty        = 1 << 0
	qcow2IncompatCorrupt      = 1 << 1
	qcow2IncompatExternalData = 1 << 2
	qcow2IncompatCompression  = 1 << 3
	qcow2IncompatExtendedL2   = 1 << 4
	qcow2IncompatKnown        = 1<<5 - 1
)

// qcow2Header is what the agent checks in a qcow2 header before it lets the
// qcow2 reader near the image.
type qcow2Header struct {
	Version      uint32
	BackingFile  bool
	ClusterBits  uint32
	Size         int64 // virtual size
	CryptMethod  uint32
	L1Size       uint32
	Incompatible uint64
	Compression  uint8 // 0 deflate, 1 zstd
}

// parseQcow2Header validates a qcow2 header and refuses what this agent will
// not write: backing files (the reader would open a local path named by the
// image), encryption, external data files, zstd-compressed clusters, extended
// L2 entries and images marked corrupt. It also bounds the L1 table so a
// hostile header cannot make the reader allocate gigabytes.
func parseQcow2Header(b []byte) (qcow2Header, error) {
	var h qcow2Header
	if len(b) < 72 || !bytes.HasPrefix(b, magicQcow2) {
		return h, fmt.Errorf("parse qcow2 header: %w: not a qcow2 header", ErrUnsupportedImage)
	}
	be := binary.BigEndian
	h.Version = be.Uint32(b[4:])
	if h.Version != 2 && h.Version != 3 {
		return h, fmt.Errorf("parse qcow2 header: %w: qcow2 version %d", ErrUnsupportedImage, h.Version)
	}
	h.BackingFile = be.Uint64(b[8:]) != 0
	h.ClusterBits = be.Uint32(b[20:])
	size := be.Uint64(b[24:])
	h.CryptMethod = be.Uint32(b[32:])
	h.L1Size = be.Uint32(b[36:])
	if h.BackingFile {
		return h, fmt.Errorf("parse qcow2 header: %w: qcow2 image has a backing file; only standalone images can be written (qemu-img convert it first)", ErrUnsupportedImage)
	}
	if h.CryptMethod != 0 {
		return h, fmt.Errorf("parse qcow2 header: %w: qcow2 image is encrypted (method %d)", ErrUnsupportedImage, h.CryptMethod)
	}
	if h.ClusterBits < qcow2MinClusterBits || h.ClusterBits > qcow2MaxClusterBits {
		return h, fmt.Errorf("parse qcow2 header: %w: cluster bits %d out of range", ErrUnsupportedImage, h.ClusterBits)
	}
	if size > 1<<62 {
		return h, fmt.Errorf("parse qcow2 header: %w: virtual size %d out of range", ErrUnsupportedImage, size)
	}
	h.Size = int64(size)
	clusterSize := int64(1) << h.ClusterBits
	bytesPerL1 := clusterSize * (clusterSize / 8)
	needL1 := (h.Size + bytesPerL1 - 1) / bytesPerL1
	if int64(h.L1Size) < needL1 || int64(h.L1Size)*8 > qcow2MaxL1Bytes {
		return h, fmt.Errorf("parse qcow2 header: %w: L1 table of %d entries does not match virtual size %d", ErrUnsupportedImage, h.L1Size, h.Size)
	}
	if h.Version == 3 {
		if len(b) < 104 {
			return h, fmt.Errorf("parse qcow2 header: %w: short qcow2 v3 header", ErrUnsupportedImage)
		}
		h.Incompatible = be.Uint64(b[72:])
		headerLen := be.Uint32(b[100:])
		if headerLen > 104 && len(b) > 104 {
			h.Compression = b[104]
		}
		switch {
		case h.Incompatible&^qcow2IncompatKnown != 0:
			return h, fmt.Errorf("parse qcow2 header: %w: unknown incompatible features %#x", ErrUnsupportedImage, h.Incompatible&^qcow2IncompatKnown)
		case h.Incompatible&qcow2IncompatCorrupt != 0:
			return h, fmt.Errorf("parse qcow2 header: %w: qcow2 image is marked corrupt", ErrUnsupportedImage)
		case h.Incompatible&qcow2IncompatExternalData != 0:
			return h, fmt.Errorf("parse qcow2 header: %w: qcow2 image uses an external data file", ErrUnsupportedImage)
		case h.Incompatible&qcow2IncompatExtendedL2 != 0:
			return h, fmt.Errorf("parse qcow2 header: %w: qcow2 extended L2 entries (subclusters)", ErrUnsupportedImage)
		case h.Incompatible&qcow2IncompatCompression != 0 && h.Compression != 0:
			return h, fmt.Errorf("parse qcow2 header: %w: qcow2 clusters compressed with compression type %d (only deflate/zlib is supported)", ErrUnsupportedImage, h.Compression)
		}
	}
	return h, nil
}
