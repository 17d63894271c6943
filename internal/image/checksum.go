package image

import (
	"bufio"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"path"
	"strings"
)

// Algorithms the cache verifies with. The names are those Ironic accepts in
// image_os_hash_algo and as the "algo:" prefix of image_checksum.
const (
	MD5    = "md5"
	SHA256 = "sha256"
	SHA512 = "sha512"
)

// ErrNoChecksum is returned by Fetch for a Source without a checksum when
// Config.AllowUnverified is false.
var ErrNoChecksum = errors.New("image has no checksum and unverified images are not allowed")

// ErrNoChecksumLine is returned when a checksum file has no line for the image.
var ErrNoChecksumLine = errors.New("the checksum file has no line for the image")

// digest is an expected checksum: an algorithm and its lower-case hex value.
type digest struct {
	algo string
	hex  string
}

func (d digest) String() string { return d.algo + ":" + d.hex }

func (d digest) newHash() hash.Hash {
	switch d.algo {
	case MD5:
		return md5.New()
	case SHA512:
		return sha512.New()
	default:
		return sha256.New()
	}
}

// hexLen is the length of a hex digest for each algorithm.
var hexLen = map[string]int{MD5: 32, SHA256: 64, SHA512: 128}

// checksumSpec is a parsed Source.Checksum: either a digest or the URL of a
// checksum file (then url is set and d is zero).
type checksumSpec struct {
	d   digest
	url string
}

// parseChecksum parses the forms Ironic accepts for image_checksum and
// image_os_hash_*: "algo:HEX", a bare hex digest whose length names the
// algorithm (32 md5, 64 sha256, 128 sha512), or an http(s):// or file:// URL
// of a checksum file. An empty string gives a zero spec and no error.
func parseChecksum(s string) (checksumSpec, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return checksumSpec{}, nil
	}
	lower := strings.ToLower(s)
	for _, p := range []string{"http://", "https://", "file://"} {
		if strings.HasPrefix(lower, p) {
			return checksumSpec{url: s}, nil
		}
	}
	algo, value, found := strings.Cut(s, ":")
	if !found {
		value, algo = s, ""
	}
	d, err := newDigest(strings.ToLower(algo), value)
	if err != nil {
		return checksumSpec{}, err
	}
	return checksumSpec{d: d}, nil
}

// newDigest validates value as a hex digest of algo; an empty algo is
// derived from the length of value.
func newDigest(algo, value string) (digest, error) {
	value = strings.ToLower(strings.TrimSpace(value))
	if value == "" {
		return digest{}, errors.New("parse checksum: empty digest")
	}
	if algo == "" {
		for a, n := range hexLen {
			if len(value) == n {
				algo = a
			}
		}
		if algo == "" {
			return digest{}, fmt.Errorf("parse checksum: a bare digest of %d characters matches no algorithm (want 32, 64 or 128)", len(value))
		}
	}
	n, ok := hexLen[algo]
	if !ok {
		return digest{}, fmt.Errorf("parse checksum: unsupported algorithm %q (want md5, sha256 or sha512)", algo)
	}
	if len(value) != n {
		return digest{}, fmt.Errorf("parse checksum: %s digest has %d characters, want %d", algo, len(value), n)
	}
	if _, err := hex.DecodeString(value); err != nil {
		return digest{}, fmt.Errorf("parse checksum: %s digest is not hex", algo)
	}
	return digest{algo: algo, hex: value}, nil
}

// maxChecksumFile bounds how much of a checksum file is read.
const maxChecksumFile = 1 << 20

// parseChecksumFile finds the digest for the file named name in the text of
// a checksum file. It understands the lines sha256sum, sha512sum and md5sum
// write ("HEX  name", "HEX *name"), "name HEX", the BSD tagged form
// ("SHA256 (name) = HEX") and a file that holds a single bare digest. Lines starting with '#'
// are comments. Names are compared by their last path element. A file that
// holds a single bare digest (no name) gives that digest, as in Ironic; a
// file whose lines all name other files is an error (ErrNoChecksumLine), so
// a deploy fails before any disk is written rather than at verification.
func parseChecksumFile(text, name string) (digest, error) {
	var entries []checksumEntry
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 4096), maxChecksumFile)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if e, ok := parseChecksumLine(line); ok {
			entries = append(entries, e)
		}
	}
	if err := sc.Err(); err != nil {
		return digest{}, fmt.Errorf("parse checksum file: %w", err)
	}
	if len(entries) == 0 {
		return digest{}, errors.New("parse checksum file: no checksum lines")
	}
	for _, e := range entries {
		if e.name != "" && path.Base(e.name) == name {
			return e.d, nil
		}
	}
	if len(entries) == 1 && entries[0].name == "" {
		return entries[0].d, nil
	}
	return digest{}, fmt.Errorf("parse checksum file: %w: no line for %q among %d entries", ErrNoChecksumLine, name, len(entries))
}

type checksumEntry struct {
	d    digest
	name string
}

// parseChecksumLine parses one non-empty, non-comment line.
func parseChecksumLine(line string) (checksumEntry, bool) {
	// BSD tag: "SHA256 (name) = HEX".
	if open := strings.Index(line, " ("); open > 0 {
		if closeIdx := strings.LastIndex(line, ") = "); closeIdx > open {
			algo := strings.ToLower(line[:open])
			d, err := newDigest(algo, line[closeIdx+len(") = "):])
			if err == nil {
				return checksumEntry{d: d, name: line[open+2 : closeIdx]}, true
			}
		}
	}
	// GNU: "HEX  name" or "HEX *name"; or a bare "HEX".
	value, rest, _ := strings.Cut(line, " ")
	if d, err := newDigest("", value); err == nil {
		rest = strings.TrimLeft(rest, " \t")
		rest = strings.TrimPrefix(rest, "*")
		return checksumEntry{d: d, name: rest}, true
	}
	// "name HEX", which Ironic also accepts (digest at the end of the line).
	if i := strings.LastIndexAny(line, " \t"); i > 0 {
		if d, err := newDigest("", line[i+1:]); err == nil {
			return checksumEntry{d: d, name: strings.TrimSpace(line[:i])}, true
		}
	}
	return checksumEntry{}, false
}
