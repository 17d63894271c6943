package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// ImageRequest says which image to write.
type ImageRequest struct {
	URL string
	// Checksum of the image as stored on the server: "sha256:HEX",
	// "sha512:HEX", "md5:HEX" or bare hex (algorithm from the length).
	Checksum string
	// Authorization, when set, is the HTTP Authorization header of the image's requests
	// (IPA's image_request_authorization, a registry's bearer token). Go's client drops it
	// on a redirect to another host. A secret: never logged.
	Authorization string
	// AllowMD5 permits md5 checksums (Ironic's allow_md5_checksum).
	AllowMD5 bool
	// DiskFormat is "raw", "qcow2" or "" to detect from magic bytes. "raw"
	// also accepts gzip, zstd and xz compressed raw images.
	DiskFormat string
	// HTTPClient downloads the image; nil means http.DefaultClient. Its
	// timeout, if any, bounds the whole download.
	HTTPClient *http.Client
	// Logger receives progress at debug and the outcome at info; nil
	// discards.
	Logger *slog.Logger
}

// Result describes a written image.
type Result struct {
	Format        Format        // detected format (raw, gzip, zstd, xz, qcow2)
	ImageSize     int64         // bytes of disk the image covers (virtual size for qcow2)
	BytesWritten  int64         // bytes placed on the target, zeroed holes included
	Downloaded    int64         // bytes fetched from the server, Range requests included
	RangeRequests int           // qcow2 only: reads the sequential stream could not serve
	Duration      time.Duration // wall time of the whole write
	Digest        string        // "sha256:hex" of the downloaded image, verified
}

// Log attribute keys.
const (
	logKeyURL     = "url"
	logKeyTarget  = "target"
	logKeyFormat  = "format"
	logKeyBytes   = "bytes"
	logKeyElapsed = "elapsed"
	logKeyError   = "error"
)

// WriteImage downloads the image and writes it onto target (a block device
// or a regular file), verifying its checksum. The first MiB of the image
// (partition table and boot sector) reaches the disk only after the rest is
// written, synced and the checksum verified. On any failure the first MiB,
// the last MiB of the disk and the last MiB of the written image area are
// zeroed and synced, so the node cannot boot half an image; the error is
// worded for the node's last_error.
//
// On success, if the image carries a GPT and the disk is larger than the
// image, the backup GPT is moved to the end of the disk (what IPA does with
// sgdisk -e) so the partition table is valid for the whole disk.
func WriteImage(ctx context.Context, req ImageRequest, target string, progress Progress) (Result, error) {
	start := time.Now()
	log := req.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	res, err := writeImage(ctx, req, target, progress)
	res.Duration = time.Since(start)
	if err != nil {
		log.LogAttrs(ctx, slog.LevelInfo, "image write failed", slog.String(logKeyURL, redactURL(req.URL)),
			slog.String(logKeyTarget, target), slog.String(logKeyError, err.Error()))
		return res, err
	}
	log.LogAttrs(ctx, slog.LevelInfo, "image written", slog.String(logKeyURL, redactURL(req.URL)),
		slog.String(logKeyTarget, target), slog.String(logKeyFormat, string(res.Format)),
		slog.Int64(logKeyBytes, res.BytesWritten), slog.Duration(logKeyElapsed, res.Duration))
	return res, nil
}

func writeImage(ctx context.Context, req ImageRequest, path string, progress Progress) (res Result, err error) {
	sum, err := parseChecksum(req.Checksum, req.AllowMD5)
	if err != nil {
		return res, err
	}
	declared := strings.ToLower(strings.TrimSpace(req.DiskFormat))
	if declared != "" && declared != "raw" && declared != "qcow2" {
		return res, fmt.Errorf("write image: %w: disk_format %q", ErrUnsupportedImage, req.DiskFormat)
	}
	t, err := openTarget(path)
	if err != nil {
		return res, err
	}
	defer t.close()
	defer func() {
		if err != nil {
			err = errors.Join(err, t.wipe())
		}
	}()
	src, err := openSource(ctx, req.HTTPClient, req.URL, req.Authorization)
	if err != nil {
		return res, err
	}
	defer src.close()
	head, err := src.head()
	if err != nil {
		return res, err
	}
	res.Format = DetectFormat(head)
	if err := checkDeclared(declared, res.Format); err != nil {
		return res, err
	}
	if err := t.invalidate(); err != nil {
		return res, err
	}
	if err := writeVerified(ctx, src, head, sum, t, progress, &res); err != nil {
		return res, err
	}
	if err := fixGPTAfterWrite(t); err != nil {
		return res, err
	}
	return res, nil
}

// checkDeclared refuses an image whose content contradicts its disk_format,
// as Ironic's image format inspection does.
func checkDeclared(declared string, got Format) error {
	switch got {
	case FormatRaw, FormatGzip, FormatZstd, FormatXz:
		if declared == "qcow2" {
			return fmt.Errorf("write image: %w: disk_format is qcow2 but the image is %s", ErrUnsupportedImage, got)
		}
	case FormatQcow2:
		if declared == "raw" {
			return fmt.Errorf("write image: %w: disk_format is raw but the image is qcow2", ErrUnsupportedImage)
		}
	default:
		return fmt.Errorf("write image: %w: %s images are not supported", ErrUnsupportedImage, got)
	}
	return nil
}

// writeVerified streams the image's bytes from src onto t in res.Format (raw or a compressed
// stream, or qcow2), fills res's sizes and digest, checks the checksum and commits t.
func writeVerified(ctx context.Context, src *source, head []byte, sum *checksum, t *target, progress Progress, res *Result) error {
	total := int64(-1)
	if res.Format == FormatRaw {
		total = src.size
	}
	m := newMeter(progress, total)
	switch res.Format {
	case FormatQcow2:
		st, err := writeQcow2(ctx, src, head, sum, t, m)
		res.ImageSize, res.Downloaded, res.RangeRequests = st.virtualSize, st.downloaded, st.rangeRequests
		if err != nil {
			return err
		}
	default:
		n, downloaded, err := writeRaw(ctx, src, res.Format, sum, t, m)
		res.ImageSize, res.Downloaded = n, downloaded
		if err != nil {
			return err
		}
	}
	res.BytesWritten = m.written
	m.finish()
	if err := sum.verify(); err != nil {
		return err
	}
	res.Digest = sum.digest()
	return t.commit()
}
