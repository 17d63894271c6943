package initsys

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// isoSector is ISO 9660's logical block size.
const isoSector = 2048

// ErrNotISO is returned for a device or file that holds no ISO 9660 filesystem.
var ErrNotISO = errors.New("not an ISO 9660 filesystem")

// ISOLabel reads the volume label of the ISO 9660 filesystem on r.
func ISOLabel(r io.ReaderAt) (string, error) {
	pvd := make([]byte, isoSector)
	if _, err := r.ReadAt(pvd, 16*isoSector); err != nil {
		return "", fmt.Errorf("read volume descriptor: %w", err)
	}
	if pvd[0] != 1 || string(pvd[1:6]) != "CD001" {
		return "", ErrNotISO
	}
	return strings.TrimRight(string(pvd[40:72]), " \x00"), nil
}

// ReadISOFile reads the file at path (slash-separated, Rock Ridge names or primary names
// compared without case and version) from the ISO 9660 filesystem on r: a small reader for
// one file of a boot ISO, with no mount and no kernel filesystem driver. Files larger than
// max are refused.
func ReadISOFile(r io.ReaderAt, path string, max int) ([]byte, error) {
	pvd := make([]byte, isoSector)
	if _, err := r.ReadAt(pvd, 16*isoSector); err != nil {
		return nil, fmt.Errorf("read volume descriptor: %w", err)
	}
	if pvd[0] != 1 || string(pvd[1:6]) != "CD001" {
		return nil, ErrNotISO
	}
	lba, size := binary.LittleEndian.Uint32(pvd[156+2:]), binary.LittleEndian.Uint32(pvd[156+10:])
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i, want := range parts {
		last := i == len(parts)-1
		if size > 1<<20 {
			return nil, fmt.Errorf("%w: directory of %d bytes", ErrNotISO, size)
		}
		dir := make([]byte, size)
		if _, err := r.ReadAt(dir, int64(lba)*isoSector); err != nil {
			return nil, fmt.Errorf("read directory: %w", err)
		}
		found := false
		for off := 0; off < len(dir); {
			n := int(dir[off])
			if n == 0 { // the rest of this sector is padding
				off = (off/isoSector + 1) * isoSector
				continue
			}
			if n < 34 || off+n > len(dir) {
				return nil, fmt.Errorf("%w: bad directory record", ErrNotISO)
			}
			rec := dir[off : off+n]
			off += n
			idLen := int(rec[32])
			if 33+idLen > len(rec) {
				return nil, fmt.Errorf("%w: bad directory record", ErrNotISO)
			}
			isDir := rec[25]&2 != 0
			if isDir == last || !nameMatches(rec, idLen, want) {
				continue
			}
			lba, size = binary.LittleEndian.Uint32(rec[2:]), binary.LittleEndian.Uint32(rec[10:])
			found = true
			break
		}
		if !found {
			return nil, fmt.Errorf("%s: %w", path, errors.New("no such file on the ISO"))
		}
	}
	if int64(size) > int64(max) {
		return nil, fmt.Errorf("%s: %d bytes, more than %d", path, size, max)
	}
	b := make([]byte, size)
	if _, err := r.ReadAt(b, int64(lba)*isoSector); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// nameMatches compares a record's Rock Ridge name (NM), else its primary identifier, to want.
func nameMatches(rec []byte, idLen int, want string) bool {
	su := rec[33+idLen:]
	if idLen%2 == 0 {
		su = su[min(1, len(su)):] // the padding byte after an even-length identifier
	}
	for len(su) >= 4 {
		l := int(su[2])
		if l < 4 || l > len(su) {
			break
		}
		if string(su[:2]) == "NM" && l >= 5 {
			return string(su[5:l]) == want
		}
		su = su[l:]
	}
	id := string(rec[33 : 33+idLen])
	id, _, _ = strings.Cut(id, ";")
	return strings.EqualFold(strings.TrimSuffix(id, "."), want)
}
