package image

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path"
)

// ResolveChecksum returns the digest ("algo:hex") that checksum names for the image at
// imageURL: the checksum itself when it is a digest (algo:HEX or bare hex), or the image's
// line of the checksum file when it is an http(s) or file URL (the sha256sum, sha512sum,
// md5sum and BSD forms; at most 1 MiB). A checksum file without the image's line gives an
// error wrapping ErrNoChecksumLine. The caller decides whether a file URL may be read.
// A nil client means http.DefaultClient.
func ResolveChecksum(ctx context.Context, client *http.Client, checksum, imageURL string) (string, error) {
	spec, err := parseChecksum(checksum)
	if err != nil {
		return "", err
	}
	if spec.url == "" {
		if spec.d.algo == "" {
			return "", ErrNoChecksum
		}
		return spec.d.String(), nil
	}
	cu, err := parseSourceURL(spec.url)
	if err != nil {
		return "", fmt.Errorf("checksum URL: %w", err)
	}
	if client == nil {
		client = http.DefaultClient
	}
	c := &Cache{cfg: Config{HTTPClient: client}}
	body, _, err := c.open(ctx, cu, "")
	if err != nil {
		return "", fmt.Errorf("checksum file: %w", err)
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, maxChecksumFile+1))
	if err != nil {
		return "", fmt.Errorf("read checksum file %s: %w", redact(cu), unwrapURLError(err))
	}
	if len(b) > maxChecksumFile {
		return "", fmt.Errorf("read checksum file %s: larger than %d bytes", redact(cu), maxChecksumFile)
	}
	name := imageURL
	if u, err := parseSourceURL(imageURL); err == nil {
		name = u.Path
	}
	d, err := parseChecksumFile(string(b), path.Base(name))
	if err != nil {
		return "", fmt.Errorf("checksum file %s: %w", redact(cu), err)
	}
	return d.String(), nil
}

// IsChecksumURL reports whether an image checksum is the URL of a checksum file.
func IsChecksumURL(checksum string) bool {
	spec, err := parseChecksum(checksum)
	return err == nil && spec.url != ""
}
