package agent

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
)

// checksum is the expected digest of the image as downloaded and the running
// hash over the downloaded bytes.
type checksum struct {
	algo string
	want []byte
	h    hash.Hash
}

// parseChecksum accepts "sha256:HEX", "sha512:HEX", "md5:HEX" or bare hex
// (algorithm from its length, like Ironic's image_checksum). md5 only when
// allowMD5 is set, as Ironic gates it behind allow_md5_checksum.
func parseChecksum(s string, allowMD5 bool) (*checksum, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, ErrChecksumRequired
	}
	algo, hexDigest, found := strings.Cut(s, ":")
	if !found {
		hexDigest = algo
		switch len(hexDigest) {
		case 32:
			algo = "md5"
		case 64:
			algo = "sha256"
		case 128:
			algo = "sha512"
		default:
			return nil, fmt.Errorf("parse image checksum: bare digest of %d hex digits matches no known algorithm", len(hexDigest))
		}
	}
	algo = strings.ToLower(algo)
	want, err := hex.DecodeString(hexDigest)
	if err != nil {
		return nil, fmt.Errorf("parse image checksum: %w", err)
	}
	var h hash.Hash
	switch algo {
	case "sha256":
		h = sha256.New()
	case "sha512":
		h = sha512.New()
	case "md5":
		if !allowMD5 {
			return nil, fmt.Errorf("parse image checksum: md5 checksums are not allowed")
		}
		h = md5.New()
	default:
		return nil, fmt.Errorf("parse image checksum: unsupported algorithm %q", algo)
	}
	if len(want) != h.Size() {
		return nil, fmt.Errorf("parse image checksum: %s digest must be %d hex digits, got %d", algo, 2*h.Size(), len(hexDigest))
	}
	return &checksum{algo: algo, want: want, h: h}, nil
}

func (c *checksum) expected() string { return c.algo + ":" + hex.EncodeToString(c.want) }

// digest is the running digest formatted like the expected one.
func (c *checksum) digest() string { return c.algo + ":" + hex.EncodeToString(c.h.Sum(nil)) }

// verify compares the running digest with the expected one.
func (c *checksum) verify() error {
	got := c.h.Sum(nil)
	if hex.EncodeToString(got) != hex.EncodeToString(c.want) {
		return &ChecksumError{Expected: c.expected(), Got: c.digest()}
	}
	return nil
}
