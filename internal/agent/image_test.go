package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestWriteImageFormats writes every format to a target of exactly the image
// size, and through each of the two write paths (raw streams, compressed or not;
// qcow2) to a larger one too, and compares with qemu-img's own conversion. The
// larger target's backup GPT is moved after either path (fixGPTAfterWrite), so
// the decompressors need not each be written to one: under -race the xz stream
// alone takes about 13 s a write.
func TestWriteImageFormats(t *testing.T) {
	im := fixture(t)
	srv := serveFiles(t, im.dir)
	ref := readRange(t, im.ref, 0, im.size)
	raw := readRange(t, im.raw, 0, im.size)
	if !bytes.Equal(raw, ref) {
		t.Fatal("fixture: qemu-img convert -O raw of the qcow2 differs from the source raw")
	}
	cases := []struct {
		file     string
		declared string
		format   Format
		larger   bool // also onto a target 32 MiB larger than the image
	}{
		{im.raw, "", FormatRaw, true},
		{im.raw, "raw", FormatRaw, false},
		{im.gz, "raw", FormatGzip, false},
		{im.zst, "", FormatZstd, false},
		{im.xz, "", FormatXz, false},
		{im.qcow2, "qcow2", FormatQcow2, true},
		{im.qcow2c, "", FormatQcow2, false},
	}
	for _, tc := range cases {
		extras := []int64{0}
		if tc.larger {
			extras = append(extras, 32<<20)
		}
		for _, extra := range extras {
			name := fmt.Sprintf("%s/%s/extra=%dMiB", filepath.Base(tc.file), tc.declared, extra>>20)
			t.Run(name, func(t *testing.T) {
				size := im.size + extra
				target := newTarget(t, size, size)
				var reports []ProgressReport
				res, err := WriteImage(writeCtx(t), ImageRequest{
					URL:        srv.URL + "/" + filepath.Base(tc.file),
					Checksum:   "sha256:" + im.sums[tc.file],
					DiskFormat: tc.declared,
				}, target, func(r ProgressReport) { reports = append(reports, r) })
				if err != nil {
					t.Fatalf("WriteImage: %v", err)
				}
				t.Logf("result: %+v", res)
				if res.Format != tc.format || res.ImageSize != im.size || res.Digest != "sha256:"+im.sums[tc.file] {
					t.Errorf("result %+v; want format %s, size %d", res, tc.format, im.size)
				}
				if len(reports) == 0 || reports[len(reports)-1].Written != im.size {
					t.Errorf("progress reports %+v; want a last one with Written=%d", reports, im.size)
				}
				if tc.format == FormatQcow2 {
					// The design downloads a qemu-img-made qcow2 about once:
					// the sequential stream serves nearly every read.
					fi, _ := os.Stat(tc.file)
					if res.Downloaded < fi.Size() || res.Downloaded > fi.Size()+2<<20 {
						t.Errorf("downloaded %d bytes for a %d-byte qcow2; want about one pass", res.Downloaded, fi.Size())
					}
				}
				got := readRange(t, target, 0, size)
				assertImageOnDisk(t, got, ref, extra)
				if extra > 0 {
					requireTools(t, "sgdisk")
					out, err := runErr("sgdisk", "-v", target)
					if err != nil || !strings.Contains(out, "No problems found") {
						t.Errorf("sgdisk -v after relocating the backup GPT: %v\n%s", err, out)
					}
				}
			})
		}
	}
}

// assertImageOnDisk: with extra == 0 the target equals qemu-img's raw
// conversion byte for byte. With a larger disk, the image is identical
// except sectors 0 (protective MBR size), 1 (primary GPT header) and the
// image's last sector (old backup header, zeroed); the space after the
// image keeps the old data except the last MiB (zeroed; the backup GPT at
// its end).
func assertImageOnDisk(t *testing.T, got, ref []byte, extra int64) {
	t.Helper()
	n := int64(len(ref))
	if extra == 0 {
		if !bytes.Equal(got, ref) {
			t.Fatalf("target differs from qemu-img convert -O raw at byte %d", firstDiff(got, ref))
		}
		return
	}
	if !bytes.Equal(got[1024:n-512], ref[1024:n-512]) {
		t.Fatalf("image body differs from qemu-img convert -O raw at byte %d", 1024+firstDiff(got[1024:n-512], ref[1024:n-512]))
	}
	if !bytes.Equal(got[:446], ref[:446]) {
		t.Errorf("boot code in sector 0 changed")
	}
	if !allBytes(got[n-512:n], 0) {
		t.Errorf("old backup GPT header at the image end not cleared")
	}
	size := int64(len(got))
	if !allBytes(got[n:size-tailSize], 0xab) {
		t.Errorf("data after the image (before the last MiB) was changed")
	}
	if !allBytes(got[size-tailSize:size-33*512], 0) {
		t.Errorf("last MiB of the disk not zeroed before the backup GPT")
	}
	if string(got[size-512:size-512+8]) != gptSignature {
		t.Errorf("no backup GPT header in the last sector")
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// assertWiped checks the failure contract: first MiB and last MiB zero.
func assertWiped(t *testing.T, target string) {
	t.Helper()
	f, err := os.Open(target)
	if err != nil {
		t.Fatal(err)
	}
	size, err := f.Seek(0, io.SeekEnd)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !allBytes(readRange(t, target, 0, headSize), 0) {
		t.Errorf("first MiB of %s not zeroed after the failure", target)
	}
	if !allBytes(readRange(t, target, size-tailSize, tailSize), 0) {
		t.Errorf("last MiB of %s not zeroed after the failure", target)
	}
}

func TestWriteImageFailures(t *testing.T) {
	im := fixture(t)
	srv := serveFiles(t, im.dir)
	noRange := serveNoRange(t, im.dir)
	trunc := serveTruncated(t, im.dir, 0.6)
	wrong := strings.Repeat("0", 64)
	url := func(s string, f string) string { return s + "/" + filepath.Base(f) }

	t.Run("checksum mismatch raw", func(t *testing.T) {
		target := newTarget(t, im.size, im.size)
		_, err := WriteImage(writeCtx(t), ImageRequest{URL: url(srv.URL, im.raw), Checksum: "sha256:" + wrong}, target, nil)
		want := fmt.Sprintf("image checksum mismatch: expected sha256:%s, got sha256:%s", wrong, im.sums[im.raw])
		var ce *ChecksumError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v; want %q", err, want)
		}
		assertWiped(t, target)
	})
	t.Run("checksum mismatch qcow2", func(t *testing.T) {
		target := newTarget(t, im.size, im.size)
		_, err := WriteImage(writeCtx(t), ImageRequest{URL: url(srv.URL, im.qcow2), Checksum: wrong}, target, nil)
		want := fmt.Sprintf("image checksum mismatch: expected sha256:%s, got sha256:%s", wrong, im.sums[im.qcow2])
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v; want %q", err, want)
		}
		assertWiped(t, target)
	})
	t.Run("sha512 and md5", func(t *testing.T) {
		target := newTarget(t, im.size, 0)
		sum := run(t, "sha512sum", im.raw)[:128]
		if _, err := WriteImage(writeCtx(t), ImageRequest{URL: url(srv.URL, im.raw), Checksum: sum}, target, nil); err != nil {
			t.Fatalf("bare sha512: %v", err)
		}
		md5 := run(t, "md5sum", im.raw)[:32]
		_, err := WriteImage(writeCtx(t), ImageRequest{URL: url(srv.URL, im.raw), Checksum: "md5:" + md5}, target, nil)
		if err == nil || !strings.Contains(err.Error(), "md5 checksums are not allowed") {
			t.Fatalf("md5 without AllowMD5: err = %v", err)
		}
		if _, err := WriteImage(writeCtx(t), ImageRequest{URL: url(srv.URL, im.raw), Checksum: md5, AllowMD5: true}, target, nil); err != nil {
			t.Fatalf("md5 with AllowMD5: %v", err)
		}
	})
	for _, tc := range []struct {
		name string
		file string
		want string
	}{
		{"too small raw", im.raw, fmt.Sprintf("image of %d bytes does not fit on %%s (%d bytes)", im.size, im.size/2)},
		{"too small qcow2", im.qcow2, fmt.Sprintf("image of %d bytes does not fit on %%s (%d bytes)", im.size, im.size/2)},
		{"too small zstd", im.zst, fmt.Sprintf("image of more than %d bytes does not fit on %%s (%d bytes)", im.size/2, im.size/2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := newTarget(t, im.size/2, im.size/2)
			_, err := WriteImage(writeCtx(t), ImageRequest{URL: url(srv.URL, tc.file), Checksum: im.sums[tc.file]}, target, nil)
			want := fmt.Sprintf(tc.want, target)
			var tl *TooLargeError
			if !errors.As(err, &tl) || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v; want %q", err, want)
			}
			assertWiped(t, target)
		})
	}
	for _, tc := range []struct {
		name string
		srv  string
		file string
	}{
		{"truncated raw", trunc.URL, im.raw},
		{"truncated gzip", trunc.URL, im.gz},
		{"truncated qcow2", trunc.URL, im.qcow2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := newTarget(t, im.size, im.size)
			_, err := WriteImage(writeCtx(t), ImageRequest{URL: url(tc.srv, tc.file), Checksum: im.sums[tc.file]}, target, nil)
			var sr *ShortReadError
			if !errors.As(err, &sr) || !strings.Contains(err.Error(), "image download truncated") {
				t.Fatalf("err = %v; want a ShortReadError", err)
			}
			assertWiped(t, target)
		})
	}
	t.Run("qcow2 from a server ignoring Range", func(t *testing.T) {
		target := newTarget(t, im.size, im.size)
		_, err := WriteImage(writeCtx(t), ImageRequest{URL: url(noRange.URL, im.qcow2), Checksum: im.sums[im.qcow2]}, target, nil)
		if !errors.Is(err, ErrRangeUnsupported) {
			t.Fatalf("err = %v; want ErrRangeUnsupported", err)
		}
		assertWiped(t, target)
	})
	t.Run("raw from a server ignoring Range", func(t *testing.T) {
		target := newTarget(t, im.size, 0)
		if _, err := WriteImage(writeCtx(t), ImageRequest{URL: url(noRange.URL, im.raw), Checksum: im.sums[im.raw]}, target, nil); err != nil {
			t.Fatalf("WriteImage: %v", err)
		}
	})
	t.Run("HTTP 404 hides the query", func(t *testing.T) {
		target := newTarget(t, im.size, im.size)
		_, err := WriteImage(writeCtx(t), ImageRequest{URL: srv.URL + "/missing.raw?temp_url_sig=SECRET", Checksum: wrong}, target, nil)
		var he *HTTPStatusError
		if !errors.As(err, &he) || he.Code != 404 || strings.Contains(err.Error(), "SECRET") {
			t.Fatalf("err = %v; want HTTP 404 without the signature", err)
		}
		assertWiped(t, target)
	})
	t.Run("declared raw but qcow2", func(t *testing.T) {
		target := newTarget(t, im.size, im.size)
		_, err := WriteImage(writeCtx(t), ImageRequest{URL: url(srv.URL, im.qcow2), Checksum: im.sums[im.qcow2], DiskFormat: "raw"}, target, nil)
		if !errors.Is(err, ErrUnsupportedImage) || !strings.Contains(err.Error(), "disk_format is raw but the image is qcow2") {
			t.Fatalf("err = %v", err)
		}
		assertWiped(t, target)
	})
	t.Run("qcow2 with a backing file", func(t *testing.T) {
		dir := t.TempDir()
		overlay := filepath.Join(dir, "overlay.qcow2")
		run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", im.qcow2, "-F", "qcow2", overlay)
		sum, _ := sha256File(overlay)
		s := serveFiles(t, dir)
		target := newTarget(t, im.size, im.size)
		_, err := WriteImage(writeCtx(t), ImageRequest{URL: s.URL + "/overlay.qcow2", Checksum: sum}, target, nil)
		if !errors.Is(err, ErrUnsupportedImage) || !strings.Contains(err.Error(), "backing file") {
			t.Fatalf("err = %v; want a backing-file refusal", err)
		}
		assertWiped(t, target)
	})
	t.Run("qcow2 with zstd clusters", func(t *testing.T) {
		dir := t.TempDir()
		z := filepath.Join(dir, "z.qcow2")
		if out, err := runErr("qemu-img", "convert", "-c", "-O", "qcow2", "-o", "compression_type=zstd", im.raw, z); err != nil {
			t.Skipf("qemu-img cannot make zstd-compressed qcow2 here: %v %s", err, out)
		}
		sum, _ := sha256File(z)
		s := serveFiles(t, dir)
		target := newTarget(t, im.size, im.size)
		_, err := WriteImage(writeCtx(t), ImageRequest{URL: s.URL + "/z.qcow2", Checksum: sum}, target, nil)
		if !errors.Is(err, ErrUnsupportedImage) || !strings.Contains(err.Error(), "compression type 1") {
			t.Fatalf("err = %v; want a zstd refusal", err)
		}
		assertWiped(t, target)
	})
	t.Run("cancelled", func(t *testing.T) {
		target := newTarget(t, im.size, im.size)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := WriteImage(ctx, ImageRequest{URL: url(srv.URL, im.raw), Checksum: im.sums[im.raw]}, target, nil)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v; want context.Canceled", err)
		}
	})
}

// TestWriteImageLoopDevice writes raw and qcow2 images to a real block
// device (a loop device over a file), exercising BLKSSZGET, O_EXCL and
// BLKZEROOUT for qcow2 holes.
func TestWriteImageLoopDevice(t *testing.T) {
	im := fixture(t)
	srv := serveFiles(t, im.dir)
	ref := readRange(t, im.ref, 0, im.size)
	for _, f := range []string{im.raw, im.qcow2, im.qcow2c} {
		t.Run(filepath.Base(f), func(t *testing.T) {
			backing := newTarget(t, im.size, im.size)
			dev := losetup(t, backing, false)
			res, err := WriteImage(writeCtx(t), ImageRequest{URL: srv.URL + "/" + filepath.Base(f), Checksum: im.sums[f]}, dev, nil)
			if err != nil {
				t.Fatalf("WriteImage to %s: %v", dev, err)
			}
			got := readRange(t, dev, 0, im.size)
			if !bytes.Equal(got, ref) {
				t.Fatalf("%s differs from qemu-img convert -O raw at byte %d (result %+v)", dev, firstDiff(got, ref), res)
			}
		})
	}
	t.Run("mismatch wipes the device", func(t *testing.T) {
		backing := newTarget(t, im.size, im.size)
		dev := losetup(t, backing, false)
		_, err := WriteImage(writeCtx(t), ImageRequest{URL: srv.URL + "/" + filepath.Base(im.qcow2), Checksum: strings.Repeat("1", 64)}, dev, nil)
		var ce *ChecksumError
		if !errors.As(err, &ce) {
			t.Fatalf("err = %v; want ChecksumError", err)
		}
		assertWiped(t, dev)
	})
}
