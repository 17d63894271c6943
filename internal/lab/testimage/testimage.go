// Package testimage builds the small whole-disk image the lab deploys.
//
// STAND-IN: branch wip-image replaces this file with the real builder (a bootable disk whose
// instance prints Marker on its serial console). Until then Build writes a raw image that
// carries the marker as data only: it deploys, but does not boot.
package testimage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
)

// Marker starts the line the booted instance prints on its serial console.
const Marker = "IRONWORK-INSTANCE-BOOTED"

// Options of Build.
type Options struct {
	KernelDir string    // kernel unpacked by scripts/kernel.sh
	WorkDir   string    // scratch space
	Size      int64     // image size in bytes (0: 64 MiB)
	Log       io.Writer // progress, may be nil
}

// Build writes the image to out and returns its SHA-256 in hex.
func Build(ctx context.Context, out string, opts Options) (string, error) {
	size := opts.Size
	if size == 0 {
		size = 64 << 20
	}
	data := make([]byte, 1<<20)
	copy(data[512:], Marker+" (stand-in image, not bootable)\n")
	f, err := os.Create(out)
	if err != nil {
		return "", fmt.Errorf("create test image: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	w := io.MultiWriter(f, h)
	for n := int64(0); n < size; n += int64(len(data)) {
		if _, err := w.Write(data); err != nil {
			return "", fmt.Errorf("write test image: %w", err)
		}
		data = make([]byte, len(data))
	}
	return hex.EncodeToString(h.Sum(nil)), f.Close()
}
