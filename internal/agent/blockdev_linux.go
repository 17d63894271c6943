//go:build linux

package agent

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sectorSize is the logical sector size of a block device.
func sectorSize(f *os.File) (int, error) {
	n, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKSSZGET)
	if err != nil {
		return 0, fmt.Errorf("BLKSSZGET %s: %w", f.Name(), err)
	}
	return n, nil
}

func rangeIoctl(f *os.File, req uint, name string, off, n int64) error {
	r := [2]uint64{uint64(off), uint64(n)}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), uintptr(req), uintptr(unsafe.Pointer(&r[0])))
	if errno != 0 {
		return fmt.Errorf("%s %s [%d,+%d): %w", name, f.Name(), off, n, errno)
	}
	return nil
}

// blkZeroOut asks the device to zero a range (WRITE ZEROES / WRITE SAME or a
// kernel-side loop): reads return zeros afterwards.
func blkZeroOut(f *os.File, off, n int64) error {
	return rangeIoctl(f, unix.BLKZEROOUT, "BLKZEROOUT", off, n)
}

// blkDiscard discards a range; secure asks for BLKSECDISCARD.
func blkDiscard(f *os.File, off, n int64, secure bool) error {
	if secure {
		return rangeIoctl(f, unix.BLKSECDISCARD, "BLKSECDISCARD", off, n)
	}
	return rangeIoctl(f, unix.BLKDISCARD, "BLKDISCARD", off, n)
}

// punchHole deallocates a range of a regular file; reads return zeros.
func punchHole(f *os.File, off, n int64) error {
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n); err != nil {
		return fmt.Errorf("punch hole %s [%d,+%d): %w", f.Name(), off, n, err)
	}
	return nil
}

// rereadPartitions asks the kernel to re-read a block device's partition
// table (BLKRRPART).
func rereadPartitions(f *os.File) error {
	if err := unix.IoctlSetInt(int(f.Fd()), unix.BLKRRPART, 0); err != nil {
		return fmt.Errorf("BLKRRPART %s: %w", f.Name(), err)
	}
	return nil
}
