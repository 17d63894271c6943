package lab

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	"github.com/ironwork/ironwork/internal/lab/testimage"
	"github.com/ironwork/ironwork/internal/ramdisk"
)

// The build cache (Options.Cache): labs that share one directory build the deploy ramdisk
// and the test image once and copy them from there. The lab tests share one per test process,
// so that each lab's up costs its namespace and processes, not the same builds again.

// withCacheLock runs fn holding an exclusive lock on the cache directory, so that two labs
// coming up at once (parallel tests) build each thing once and never read it half-written.
func withCacheLock(cache string, fn func() error) error {
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return fmt.Errorf("create build cache: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(cache, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("open build cache lock: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock build cache: %w", err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return fn()
}

// cachedRamdisk puts the deploy ramdisk into rd, built once into the cache.
func cachedRamdisk(ctx context.Context, opts Options, rd string) error {
	src := filepath.Join(opts.Cache, "ramdisk")
	return withCacheLock(opts.Cache, func() error {
		if !exists(filepath.Join(src, ramdisk.KernelName)) || !exists(filepath.Join(src, ramdisk.InitramfsName)) {
			if opts.Agent == "" {
				return fmt.Errorf("the build cache %s has no deploy ramdisk yet and there is no ironwork-agent binary to build it with", opts.Cache)
			}
			fmt.Fprintf(opts.Log, "building the deploy ramdisk from %s into the build cache %s\n", opts.KernelDir, opts.Cache)
			if _, err := ramdisk.Build(ctx, ramdisk.BuildConfig{KernelDir: opts.KernelDir, Agent: opts.Agent, Output: src}); err != nil {
				return fmt.Errorf("build the deploy ramdisk: %w", err)
			}
		}
		for _, name := range []string{ramdisk.KernelName, ramdisk.InitramfsName} {
			if err := copyFile(filepath.Join(src, name), filepath.Join(rd, name)); err != nil {
				return fmt.Errorf("copy the deploy ramdisk from the build cache: %w", err)
			}
		}
		return nil
	})
}

// cachedTestImage writes the whole-disk test image to imgPath and its boot files (kernel and
// initramfs, for the ramdisk deploy) beside it, built once into the cache, and returns the
// image's sha256.
func cachedTestImage(ctx context.Context, opts Options, imgPath string) (string, error) {
	src := filepath.Join(opts.Cache, fmt.Sprintf("image-%d", opts.ImageSize))
	img, sumFile := filepath.Join(src, "image.raw"), filepath.Join(src, "image.raw.sha256")
	var sum string
	err := withCacheLock(opts.Cache, func() error {
		if b, err := os.ReadFile(sumFile); err == nil && exists(img) {
			sum = string(b)
		} else {
			fmt.Fprintf(opts.Log, "building the test OS image into the build cache %s\n", opts.Cache)
			if err := os.MkdirAll(src, 0o755); err != nil {
				return err
			}
			s, err := testimage.Build(ctx, img, testimage.Options{KernelDir: opts.KernelDir, WorkDir: src, Size: opts.ImageSize,
				Log: slog.New(slog.NewTextHandler(opts.Log, &slog.HandlerOptions{Level: slog.LevelWarn})), BootFilesDir: src})
			if err != nil {
				return fmt.Errorf("build the test image: %w", err)
			}
			if err := os.WriteFile(sumFile, []byte(s), 0o644); err != nil {
				return err
			}
			sum = s
		}
		for _, name := range []string{"image.raw", testimage.BootKernelName, testimage.BootInitramfsName} {
			if err := copyFile(filepath.Join(src, name), filepath.Join(filepath.Dir(imgPath), name)); err != nil {
				return fmt.Errorf("copy the test image from the build cache: %w", err)
			}
		}
		if filepath.Base(imgPath) != "image.raw" {
			return os.Rename(filepath.Join(filepath.Dir(imgPath), "image.raw"), imgPath)
		}
		return nil
	})
	return sum, err
}

// copyFile copies src to dst (created or truncated, mode 0644).
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
