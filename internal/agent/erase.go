package agent

import (
	"context"
	"fmt"
)

// EraseMetadata wipes partition tables and filesystem/RAID signatures: it
// zeroes the first and last MiB of every partition found in the GPT or MBR
// (superblocks live at the start, md 1.0 and ZFS labels at the end) and then
// the first and last MiB of the disk (MBR, primary and backup GPT). It writes
// zeros rather than discarding, because a discarded range need not read back
// as zeros. Block devices get their partition table re-read afterwards.
func EraseMetadata(ctx context.Context, path string) error {
	t, err := openTarget(path)
	if err != nil {
		return fmt.Errorf("erase metadata: %w", err)
	}
	defer t.close()
	if pt, err := readPartitionTable(t.f, path, t.sector); err == nil {
		for _, p := range pt.Partitions {
			if err := ctx.Err(); err != nil {
				return err
			}
			end := min(p.Start+p.Size, t.size)
			if p.Start >= end {
				continue
			}
			if err := t.writeZeros(p.Start, min(headSize, end-p.Start)); err != nil {
				return fmt.Errorf("erase metadata of %s partition %d: %w", path, p.Number, err)
			}
			tail := max(p.Start, end-tailSize)
			if err := t.writeZeros(tail, end-tail); err != nil {
				return fmt.Errorf("erase metadata of %s partition %d: %w", path, p.Number, err)
			}
		}
	}
	if err := t.invalidate(); err != nil {
		return fmt.Errorf("erase metadata: %w", err)
	}
	if t.block {
		_ = rereadPartitions(t.f) // best effort, as partprobe in IPA
	}
	return nil
}

// EraseMethod says how EraseDevice erased a device.
type EraseMethod string

// Erase methods, strongest first.
const (
	EraseSecureDiscard EraseMethod = "blksecdiscard"
	EraseDiscard       EraseMethod = "blkdiscard"
	EraseZeroOut       EraseMethod = "blkzeroout"
	EraseWriteZeros    EraseMethod = "write-zeros"
)

// eraseChunk is how much is erased between progress reports and context
// checks.
const eraseChunk = 256 << 20

// EraseDevice erases a whole device: BLKSECDISCARD if the device supports
// it, else BLKDISCARD, else BLKZEROOUT, else (regular files, or devices
// refusing all three) writing zeros. After a discard, whose read-back is not
// guaranteed to be zeros, the metadata areas are zeroed explicitly. Progress
// is reported for the zeroing methods.
func EraseDevice(ctx context.Context, path string, progress Progress) (EraseMethod, error) {
	t, err := openTarget(path)
	if err != nil {
		return "", fmt.Errorf("erase device: %w", err)
	}
	defer t.close()
	if t.block {
		for _, m := range []EraseMethod{EraseSecureDiscard, EraseDiscard} {
			if err := blkDiscard(t.f, 0, t.size, m == EraseSecureDiscard); err != nil {
				continue
			}
			if err := t.invalidate(); err != nil {
				return m, fmt.Errorf("erase device: %w", err)
			}
			return m, nil
		}
	}
	m := newMeter(progress, t.size)
	method := EraseWriteZeros
	if t.block {
		method = EraseZeroOut
	}
	for off := int64(0); off < t.size; {
		if err := ctx.Err(); err != nil {
			return method, err
		}
		n := min(int64(eraseChunk), t.size-off)
		if method == EraseZeroOut {
			if err := blkZeroOut(t.f, off, n); err != nil {
				if off != 0 {
					return method, fmt.Errorf("erase device: %w", err)
				}
				method = EraseWriteZeros
			}
		}
		if method == EraseWriteZeros {
			if err := t.writeZeros(off, n); err != nil {
				return method, fmt.Errorf("erase device: %w", err)
			}
		}
		off += n
		m.add(n)
	}
	if err := t.f.Sync(); err != nil {
		return method, fmt.Errorf("erase device: sync %s: %w", path, err)
	}
	m.finish()
	return method, nil
}
