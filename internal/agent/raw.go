package agent

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// The raw path reads and writes in rawChunk pieces with rawDepth buffers in
// flight: one goroutine downloads, hashes and decompresses while the caller
// writes, like `curl | dd` has two processes.
const (
	rawChunk = 4 << 20
	rawDepth = 4
)

// zstdMaxWindow bounds the decoder's memory: zstd --long=27 (128 MiB) is the
// largest window accepted.
const zstdMaxWindow = 128 << 20

// writeRaw streams a raw or compressed raw image onto t and returns the
// number of image bytes written and of bytes downloaded. The checksum covers
// the downloaded bytes.
func writeRaw(ctx context.Context, src *source, format Format, sum *checksum, t *target, m *meter) (written, downloaded int64, err error) {
	cr := &countingReader{r: src.buffered, sum: sum, want: src.size}
	defer func() { downloaded = cr.n }()
	var r io.Reader = cr
	switch format {
	case FormatRaw:
		if src.size > t.size {
			return 0, 0, t.tooLarge(src.size, false)
		}
	case FormatGzip:
		zr, err := gzip.NewReader(cr)
		if err != nil {
			return 0, 0, fmt.Errorf("decompress gzip image: %w", err)
		}
		defer zr.Close()
		r = zr
	case FormatZstd:
		zr, err := zstd.NewReader(cr, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return 0, 0, fmt.Errorf("decompress zstd image: %w", err)
		}
		defer zr.Close()
		r = zr
	case FormatXz:
		zr, err := xz.NewReader(cr)
		if err != nil {
			return 0, 0, fmt.Errorf("decompress xz image: %w", err)
		}
		r = zr
	default:
		return 0, 0, fmt.Errorf("write image: %w: format %s", ErrUnsupportedImage, format)
	}
	n, err := copyPipelined(ctx, r, t, m, src.close)
	if err != nil {
		if format != FormatRaw && !isDownloadError(err) {
			err = fmt.Errorf("decompress %s image: %w", format, err)
		}
		return n, 0, err
	}
	if format != FormatRaw {
		// The checksum is over every downloaded byte, including any
		// padding after the compressed stream.
		if _, err := io.Copy(io.Discard, cr); err != nil {
			return n, 0, err
		}
	}
	return n, 0, nil
}

func isDownloadError(err error) bool {
	var sr *ShortReadError
	var tl *TooLargeError
	return errors.As(err, &sr) || errors.As(err, &tl) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// fill reads into buf until it is full or r fails; io.EOF is returned as is
// (unlike io.ReadFull, which would turn a short final read into
// io.ErrUnexpectedEOF and hide a decompressor's own truncation error).
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		k, err := r.Read(buf[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// copyPipelined copies r to t from offset 0 with a reader goroutine and
// rawDepth buffers. abort unblocks the reader when writing fails.
func copyPipelined(ctx context.Context, r io.Reader, t *target, m *meter, abort func()) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	free := make(chan []byte, rawDepth)
	full := make(chan []byte, rawDepth)
	for range rawDepth {
		free <- make([]byte, rawChunk)
	}
	var readErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(full)
		for {
			var buf []byte
			select {
			case buf = <-free:
			case <-ctx.Done():
				readErr = ctx.Err()
				return
			}
			n, err := fill(r, buf)
			if n > 0 {
				select {
				case full <- buf[:n]:
				case <-ctx.Done():
					readErr = ctx.Err()
					return
				}
			}
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				readErr = err
				return
			}
		}
	}()
	var off int64
	var writeErr error
	for buf := range full {
		if writeErr == nil {
			if writeErr = t.writeAt(buf, off); writeErr != nil {
				cancel()
				abort()
			} else {
				off += int64(len(buf))
				m.add(int64(len(buf)))
			}
		}
		free <- buf[:cap(buf)]
	}
	<-done
	if writeErr != nil {
		return off, writeErr
	}
	return off, readErr
}
