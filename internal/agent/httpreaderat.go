package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// httpReaderAt gives the qcow2 reader random access to an image on an HTTP
// server while reading it, as far as possible, exactly once and in order.
//
// It owns the sequential body of the first GET (the stream). A read at or
// ahead of the stream position is served by reading the stream forward,
// hashing every byte on the way and keeping the last blocks in a small LRU
// cache. A read behind the stream position that misses the cache becomes an
// HTTP Range request of up to readAhead blocks (not hashed: the stream has
// already hashed those bytes). qemu-img writes qcow2 files with metadata first
// and data clusters in guest order, so for such images the stream alone
// serves nearly every read and the image is downloaded about once; an image
// laid out backwards costs at most one extra download, never unbounded
// memory. The checksum is over the stream, which Finish drains to the end.
//
// It stores the write's context because io.ReaderAt has no context
// parameter; it lives only for one WriteImage call.
type httpReaderAt struct {
	ctx context.Context
	src *source
	sum *checksum

	mu         sync.Mutex
	stream     *countingReader
	pos        int64 // stream position, always a multiple of blockSize until EOF
	size       int64
	blocks     map[int64][]byte // block index -> data
	lru        []int64          // block indexes, least recent first
	free       [][]byte
	downloaded int64 // bytes fetched by Range requests
	requests   int
}

const (
	raBlockSize = 256 << 10
	raCacheSize = 32 // blocks: 8 MiB
	raReadAhead = 4  // blocks per Range request
)

func newHTTPReaderAt(ctx context.Context, src *source, sum *checksum) *httpReaderAt {
	return &httpReaderAt{
		ctx:    ctx,
		src:    src,
		sum:    sum,
		stream: &countingReader{r: src.buffered, sum: sum, want: src.size},
		size:   src.size,
		blocks: make(map[int64][]byte, raCacheSize),
	}
}

// ReadAt implements io.ReaderAt.
func (h *httpReaderAt) ReadAt(p []byte, off int64) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if off < 0 {
		return 0, fmt.Errorf("read image at %d: negative offset", off)
	}
	n := 0
	for n < len(p) {
		cur := off + int64(n)
		if cur >= h.size {
			return n, io.EOF
		}
		idx := cur / raBlockSize
		b, err := h.block(idx)
		if err != nil {
			return n, err
		}
		k := copy(p[n:], b[cur-idx*raBlockSize:])
		if k == 0 {
			return n, io.EOF
		}
		n += k
	}
	return n, nil
}

func (h *httpReaderAt) block(idx int64) ([]byte, error) {
	if b, ok := h.blocks[idx]; ok {
		h.touch(idx)
		return b, nil
	}
	if err := h.ctx.Err(); err != nil {
		return nil, err
	}
	start := idx * raBlockSize
	if start >= h.pos {
		for h.pos <= start {
			if err := h.advance(); err != nil {
				return nil, err
			}
		}
		return h.blocks[idx], nil
	}
	if err := h.fetch(idx); err != nil {
		return nil, err
	}
	return h.blocks[idx], nil
}

// advance reads the next block from the stream into the cache.
func (h *httpReaderAt) advance() error {
	idx := h.pos / raBlockSize
	buf := h.alloc()
	want := min(int64(raBlockSize), h.size-h.pos)
	n, err := fill(h.stream, buf[:want])
	if errors.Is(err, io.EOF) && int64(n) == want {
		err = nil
	}
	if err != nil {
		h.free = append(h.free, buf)
		if errors.Is(err, io.EOF) {
			return &ShortReadError{Got: h.pos + int64(n), Want: h.size}
		}
		return err
	}
	h.pos += int64(n)
	h.put(idx, buf[:n])
	return nil
}

// fetch reads up to raReadAhead blocks starting at idx with one Range
// request, stopping at the stream position and at cached blocks.
func (h *httpReaderAt) fetch(idx int64) error {
	start := idx * raBlockSize
	count := int64(1)
	for count < raReadAhead {
		next := idx + count
		if next*raBlockSize >= h.pos {
			break
		}
		if _, ok := h.blocks[next]; ok {
			break
		}
		count++
	}
	length := min(count*raBlockSize, h.pos-start)
	body, err := h.src.getRange(h.ctx, start, length)
	if err != nil {
		return err
	}
	defer body.Close()
	h.requests++
	for i := int64(0); i < count; i++ {
		bstart := start + i*raBlockSize
		want := min(int64(raBlockSize), h.size-bstart)
		buf := h.alloc()
		n, err := fill(body, buf[:want])
		if int64(n) != want {
			h.free = append(h.free, buf)
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read image range %d+%d: %w", bstart, want, err)
		}
		h.downloaded += int64(n)
		h.put(idx+i, buf[:n])
	}
	return nil
}

func (h *httpReaderAt) alloc() []byte {
	if n := len(h.free); n > 0 {
		b := h.free[n-1]
		h.free = h.free[:n-1]
		return b[:cap(b)]
	}
	return make([]byte, raBlockSize)
}

func (h *httpReaderAt) put(idx int64, b []byte) {
	if len(h.lru) >= raCacheSize {
		old := h.lru[0]
		h.lru = h.lru[1:]
		h.free = append(h.free, h.blocks[old])
		delete(h.blocks, old)
	}
	h.blocks[idx] = b
	h.lru = append(h.lru, idx)
}

func (h *httpReaderAt) touch(idx int64) {
	for i, v := range h.lru {
		if v == idx {
			copy(h.lru[i:], h.lru[i+1:])
			h.lru[len(h.lru)-1] = idx
			return
		}
	}
}

// finish drains the stream to its end so the checksum covers the whole file
// and a truncated body is noticed.
func (h *httpReaderAt) finish() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	n, err := io.Copy(io.Discard, h.stream)
	h.pos += n
	if err != nil {
		return err
	}
	if h.pos != h.size {
		return &ShortReadError{Got: h.pos, Want: h.size}
	}
	return nil
}

// stats reports bytes downloaded in total (stream plus ranges) and the number
// of Range requests.
func (h *httpReaderAt) stats() (downloaded int64, rangeRequests int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stream.n + h.downloaded, h.requests
}
