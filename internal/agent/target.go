package agent

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// The first MiB of the disk holds the MBR, the primary GPT and usually the
// boot loader's first stage; the last MiB holds the backup GPT (and md 1.0 /
// ZFS labels). A disk with both zeroed is not bootable and not recognisable.
const (
	headSize = 1 << 20
	tailSize = 1 << 20
)

// target is the block device or file an image is written to. It holds the
// image's first MiB back in memory so that it reaches the disk last, after
// everything else is written, verified and synced.
type target struct {
	f        *os.File
	path     string
	size     int64 // bytes the image may cover: the disk, or the root partition's window
	base     int64 // where the image starts on the disk: 0, or the root partition's start
	diskSize int64 // bytes of the whole disk
	sector   int
	block    bool
	head     []byte
	imageEnd int64 // one past the highest byte of the image placed so far
	zeros    []byte
}

// openTarget opens path for writing. Block devices are opened O_EXCL, which
// Linux refuses while the device is mounted or held by md/dm.
func openTarget(path string) (*target, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open target: %w", err)
	}
	block := fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0
	flags := os.O_RDWR
	if block {
		flags |= os.O_EXCL
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("open target %s: neither a block device nor a regular file", path)
	}
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		return nil, fmt.Errorf("open target: %w", err)
	}
	t := &target{f: f, path: path, block: block, sector: 512}
	if t.size, err = f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, fmt.Errorf("size of target %s: %w", path, err)
	}
	t.diskSize = t.size
	if block {
		if t.sector, err = sectorSize(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("open target: %w", err)
		}
	}
	return t, nil
}

func (t *target) close() error { return t.f.Close() }

// window makes the image land in [base, base+size) of the disk: a partition image goes
// into its root partition. The held-back first MiB is then the partition's first MiB.
func (t *target) window(base, size int64) {
	t.base, t.size = base, size
}

func (t *target) tooLarge(size int64, atLeast bool) error {
	return &TooLargeError{ImageSize: size, AtLeast: atLeast, Target: t.path, TargetSize: t.size}
}

// invalidate zeroes the first and last MiB before anything is written, so
// that a crash or power loss mid-write leaves neither the old nor a half new
// partition table behind.
func (t *target) invalidate() error {
	if err := t.writeZeros(0, min(headSize, t.diskSize)); err != nil {
		return fmt.Errorf("invalidate %s: %w", t.path, err)
	}
	if t.base > 0 {
		// A partition image: its partition's start too (an old file system there).
		if err := t.writeZeros(t.base, min(headSize, t.size)); err != nil {
			return fmt.Errorf("invalidate %s: %w", t.path, err)
		}
	}
	if err := t.writeZeros(max(0, t.diskSize-tailSize), min(tailSize, t.diskSize)); err != nil {
		return fmt.Errorf("invalidate %s: %w", t.path, err)
	}
	if err := t.f.Sync(); err != nil {
		return fmt.Errorf("invalidate %s: sync: %w", t.path, err)
	}
	return nil
}

// writeAt places image bytes at off; the part inside the first MiB is held
// back. A write past the end of the target is a TooLargeError.
func (t *target) writeAt(p []byte, off int64) error {
	end := off + int64(len(p))
	if end > t.size {
		return t.tooLarge(t.size, true)
	}
	if t.head == nil {
		t.head = make([]byte, min(headSize, t.size))
	}
	if off < int64(len(t.head)) {
		n := copy(t.head[off:], p)
		p = p[n:]
		off += int64(n)
	}
	if len(p) > 0 {
		if _, err := t.f.WriteAt(p, t.base+off); err != nil {
			return fmt.Errorf("write %s at %d: %w", t.path, t.base+off, err)
		}
	}
	t.imageEnd = max(t.imageEnd, end)
	return nil
}

// zeroRange makes [off, off+n) of the image read as zeros: the target may
// hold an earlier deployment, so holes in the image cannot simply be
// skipped. Block devices get BLKZEROOUT, files a punched hole; both fall back
// to writing zeros.
func (t *target) zeroRange(off, n int64) error {
	end := off + n
	if end > t.size {
		return t.tooLarge(end, false)
	}
	if t.head == nil {
		t.head = make([]byte, min(headSize, t.size))
	}
	if off < int64(len(t.head)) {
		k := min(n, int64(len(t.head))-off)
		clear(t.head[off : off+k])
		off += k
		n -= k
	}
	t.imageEnd = max(t.imageEnd, end)
	if n == 0 {
		return nil
	}
	var err error
	off += t.base
	switch {
	case off%int64(t.sector) != 0 || n%int64(t.sector) != 0:
		err = errors.ErrUnsupported
	case t.block:
		err = blkZeroOut(t.f, off, n)
	default:
		err = punchHole(t.f, off, n)
	}
	if err != nil {
		return t.writeZeros(off, n)
	}
	return nil
}

// writeZeros writes zero bytes to the device at a disk offset, bypassing the held-back head.
func (t *target) writeZeros(off, n int64) error {
	if t.zeros == nil {
		t.zeros = make([]byte, 1<<20)
	}
	for n > 0 {
		k := min(n, int64(len(t.zeros)))
		if _, err := t.f.WriteAt(t.zeros[:k], off); err != nil {
			return fmt.Errorf("write zeros to %s at %d: %w", t.path, off, err)
		}
		off += k
		n -= k
	}
	return nil
}

// commit syncs the image body, then writes the held-back first MiB and syncs
// again: only a completely written, verified image gets a partition table.
func (t *target) commit() error {
	if err := t.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", t.path, err)
	}
	if n := min(int64(len(t.head)), t.imageEnd); n > 0 {
		if _, err := t.f.WriteAt(t.head[:n], t.base); err != nil {
			return fmt.Errorf("write first MiB of %s: %w", t.path, err)
		}
	}
	if err := t.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", t.path, err)
	}
	return nil
}

// wipe runs after a failure: it zeroes the first MiB, the last MiB of the
// disk and the last MiB of what was written of the image (where the image's
// own backup GPT would be), then syncs.
func (t *target) wipe() error {
	var errs []error
	errs = append(errs, t.writeZeros(0, min(headSize, t.diskSize)))
	errs = append(errs, t.writeZeros(max(0, t.diskSize-tailSize), min(tailSize, t.diskSize)))
	if t.base > 0 {
		errs = append(errs, t.writeZeros(t.base, min(headSize, t.size)))
	}
	if t.imageEnd > headSize {
		start := max(headSize, t.imageEnd-tailSize)
		errs = append(errs, t.writeZeros(t.base+start, t.imageEnd-start))
	}
	if err := t.f.Sync(); err != nil {
		errs = append(errs, fmt.Errorf("sync %s: %w", t.path, err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("wipe %s after failure: %w", t.path, err)
	}
	return nil
}
