package agent

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/lima-vm/go-qcow2reader/image"
	"github.com/lima-vm/go-qcow2reader/image/qcow2"
)

// qcow2Chunk is the most image data read and written in one piece.
const qcow2Chunk = 4 << 20

// qcow2Stats describes how a qcow2 image was read.
type qcow2Stats struct {
	virtualSize   int64
	downloaded    int64
	rangeRequests int
	zeroed        int64
}

// writeQcow2 converts a qcow2 image on the fly: allocated data clusters are
// written at their guest offsets, unallocated and zero clusters are zeroed on
// the target (the target may hold an earlier deployment). Nothing is held in
// memory beyond the reader's block cache, its L2 table cache and one chunk.
func writeQcow2(ctx context.Context, src *source, head []byte, sum *checksum, t *target, m *meter) (st qcow2Stats, err error) {
	hdr, err := parseQcow2Header(head)
	if err != nil {
		return st, err
	}
	st.virtualSize = hdr.Size
	m.total = hdr.Size
	if hdr.Size > t.size {
		return st, t.tooLarge(hdr.Size, false)
	}
	if !src.rangeOK {
		return st, fmt.Errorf("write qcow2 image: %w", ErrRangeUnsupported)
	}
	if src.size < 0 {
		return st, fmt.Errorf("write qcow2 image: server announced no length")
	}
	ra := newHTTPReaderAt(ctx, src, sum)
	// st is a named result so the deferred stats reach the caller.
	defer func() { st.downloaded, st.rangeRequests = ra.stats() }()
	img, err := qcow2.Open(ra, refuseBacking)
	if err != nil {
		return st, fmt.Errorf("open qcow2 image: %w", err)
	}
	if err := img.Readable(); err != nil {
		return st, fmt.Errorf("open qcow2 image: %w: %w", ErrUnsupportedImage, err)
	}
	buf := make([]byte, qcow2Chunk)
	for off := int64(0); off < hdr.Size; {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		ext, err := img.Extent(off, min(qcow2Chunk*16, hdr.Size-off))
		if err != nil {
			return st, fmt.Errorf("read qcow2 cluster map at %d: %w", off, err)
		}
		if ext.Length <= 0 || ext.Start != off {
			return st, fmt.Errorf("read qcow2 cluster map at %d: bad extent %+v", off, ext)
		}
		if ext.Zero || !ext.Allocated {
			if err := t.zeroRange(ext.Start, ext.Length); err != nil {
				return st, err
			}
			st.zeroed += ext.Length
			m.add(ext.Length)
		} else if err := copyExtent(img, ext, buf, t, m); err != nil {
			return st, err
		}
		off += ext.Length
	}
	if err := ra.finish(); err != nil {
		return st, err
	}
	return st, nil
}

func copyExtent(img io.ReaderAt, ext image.Extent, buf []byte, t *target, m *meter) error {
	for off, end := ext.Start, ext.Start+ext.Length; off < end; {
		n := min(int64(len(buf)), end-off)
		k, err := img.ReadAt(buf[:n], off)
		if int64(k) != n {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read qcow2 image at %d: %w", off, err)
		}
		if err := t.writeAt(buf[:n], off); err != nil {
			return err
		}
		m.add(n)
		off += n
	}
	return nil
}

// refuseBacking is the qcow2 reader's opener for backing files; the header
// check refuses them first, this is the second line.
func refuseBacking(io.ReaderAt, image.Type) (image.Image, error) {
	return nil, fmt.Errorf("%w: backing files are not supported", ErrUnsupportedImage)
}
