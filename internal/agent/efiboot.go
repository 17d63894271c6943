package agent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf16"
)

// EFI variables: Boot#### load options and BootOrder, as efivarfs shows them (a file named
// Name-VendorGUID whose content is the 4-byte attributes, then the value). UEFI spec 2.10,
// 3.1.3 (load options) and 10.3 (device paths).
const (
	efiGlobalGUID  = "8be4df61-93ca-11d2-aa0d-00e098032b8c"
	efiVarAttrs    = 0x7 // non-volatile, boot service and runtime access
	loadOptActive  = 0x1
	dpTypeMedia    = 0x04
	dpSubHardDrive = 0x01
	dpSubFilePath  = 0x04
	dpTypeEnd      = 0x7f
	dpSubEndEntire = 0xff
	hdNodeLen      = 42
)

// ErrBadLoadOption: an EFI load option that does not parse.
var ErrBadLoadOption = errors.New("malformed EFI load option")

// LoadOption is an EFI Boot#### variable's value: a description and, for the entries this
// agent writes, the hard-drive media path of a partition and the file on it.
type LoadOption struct {
	Attributes  uint32
	Description string
	// From the first hard-drive node, when there is one.
	PartNumber uint32
	PartStart  uint64 // LBA
	PartSize   uint64 // LBA
	Signature  [16]byte
	MBRType    byte // 1 MBR, 2 GPT
	SigType    byte // 1 MBR signature, 2 GUID
	// File is the first file-path node, backslashes as stored ("\EFI\BOOT\BOOTX64.EFI").
	File string
}

// encodeLoadOption serialises o (attributes, path list length, UTF-16 description,
// hard-drive node, file-path node, end node).
func encodeLoadOption(o LoadOption) []byte {
	le := binary.LittleEndian
	var dp bytes.Buffer
	hd := make([]byte, hdNodeLen)
	hd[0], hd[1] = dpTypeMedia, dpSubHardDrive
	le.PutUint16(hd[2:], hdNodeLen)
	le.PutUint32(hd[4:], o.PartNumber)
	le.PutUint64(hd[8:], o.PartStart)
	le.PutUint64(hd[16:], o.PartSize)
	copy(hd[24:40], o.Signature[:])
	hd[40], hd[41] = o.MBRType, o.SigType
	dp.Write(hd)
	file := utf16z(o.File)
	fp := make([]byte, 4, 4+len(file))
	fp[0], fp[1] = dpTypeMedia, dpSubFilePath
	le.PutUint16(fp[2:], uint16(4+len(file)))
	dp.Write(append(fp, file...))
	dp.Write([]byte{dpTypeEnd, dpSubEndEntire, 4, 0})
	out := make([]byte, 6)
	le.PutUint32(out, o.Attributes)
	le.PutUint16(out[4:], uint16(dp.Len()))
	out = append(out, utf16z(o.Description)...)
	return append(out, dp.Bytes()...)
}

func utf16z(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u)+2)
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// ParseLoadOption decodes a Boot#### value (without the efivarfs attribute prefix).
func ParseLoadOption(b []byte) (LoadOption, error) {
	var o LoadOption
	le := binary.LittleEndian
	if len(b) < 6 {
		return o, fmt.Errorf("%w: %d bytes", ErrBadLoadOption, len(b))
	}
	o.Attributes = le.Uint32(b)
	pathLen := int(le.Uint16(b[4:]))
	rest := b[6:]
	end := -1
	for i := 0; i+1 < len(rest); i += 2 {
		if rest[i] == 0 && rest[i+1] == 0 {
			end = i
			break
		}
	}
	if end < 0 {
		return o, fmt.Errorf("%w: description not terminated", ErrBadLoadOption)
	}
	o.Description = decodeUTF16(rest[:end])
	rest = rest[end+2:]
	if pathLen > len(rest) {
		return o, fmt.Errorf("%w: device path of %d bytes, %d left", ErrBadLoadOption, pathLen, len(rest))
	}
	dp := rest[:pathLen]
	for len(dp) >= 4 {
		typ, sub, n := dp[0], dp[1], int(le.Uint16(dp[2:]))
		if n < 4 || n > len(dp) {
			return o, fmt.Errorf("%w: device path node of %d bytes", ErrBadLoadOption, n)
		}
		node := dp[:n]
		switch {
		case typ == dpTypeEnd && sub == dpSubEndEntire:
			return o, nil
		case typ == dpTypeMedia && sub == dpSubHardDrive && n == hdNodeLen && o.PartNumber == 0:
			o.PartNumber = le.Uint32(node[4:])
			o.PartStart = le.Uint64(node[8:])
			o.PartSize = le.Uint64(node[16:])
			copy(o.Signature[:], node[24:40])
			o.MBRType, o.SigType = node[40], node[41]
		case typ == dpTypeMedia && sub == dpSubFilePath && o.File == "":
			o.File = strings.TrimRight(decodeUTF16(node[4:]), "\x00")
		}
		dp = dp[n:]
	}
	return o, fmt.Errorf("%w: device path without an end node", ErrBadLoadOption)
}

func decodeUTF16(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// efiVarPath is the efivarfs file of a global variable.
func efiVarPath(dir, name string) string { return filepath.Join(dir, name+"-"+efiGlobalGUID) }

// readEFIVar reads a variable's value (without attributes); os.ErrNotExist when unset.
func readEFIVar(dir, name string) ([]byte, error) {
	b, err := os.ReadFile(efiVarPath(dir, name))
	if err != nil {
		return nil, err
	}
	if len(b) < 4 {
		return nil, fmt.Errorf("read EFI variable %s: %d bytes", name, len(b))
	}
	return b[4:], nil
}

// writeEFIVar writes a variable in one write (efivarfs needs attributes and value together),
// lifting the immutable flag efivarfs puts on existing variables.
func writeEFIVar(dir, name string, value []byte) error {
	p := efiVarPath(dir, name)
	clearImmutable(p)
	b := make([]byte, 4, 4+len(value))
	binary.LittleEndian.PutUint32(b, efiVarAttrs)
	b = append(b, value...)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write EFI variable %s: %w", name, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write EFI variable %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write EFI variable %s: %w", name, err)
	}
	return nil
}

// SetBootEntry makes o the first boot option: an existing Boot#### with the same
// description is replaced (as IPA does with efibootmgr, which it runs to remove entries of
// the same label), otherwise the lowest free number is used; the number is moved to the
// front of BootOrder. It returns the variable's name ("Boot0003").
func SetBootEntry(dir string, o LoadOption) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("read EFI variables: %w", err)
	}
	used := map[uint16]bool{}
	num := -1
	for _, e := range entries {
		var n uint16
		name, ok := strings.CutSuffix(e.Name(), "-"+efiGlobalGUID)
		if !ok || len(name) != 8 || !strings.HasPrefix(name, "Boot") {
			continue
		}
		if _, err := fmt.Sscanf(name[4:], "%04X", &n); err != nil {
			continue
		}
		used[n] = true
		if v, err := readEFIVar(dir, name); err == nil {
			if old, err := ParseLoadOption(v); err == nil && old.Description == o.Description && num < 0 {
				num = int(n)
			}
		}
	}
	for i := 0; num < 0 && i <= 0xffff; i++ {
		if !used[uint16(i)] {
			num = i
		}
	}
	if num < 0 {
		return "", errors.New("write boot entry: no free Boot#### number")
	}
	name := fmt.Sprintf("Boot%04X", num)
	if err := writeEFIVar(dir, name, encodeLoadOption(o)); err != nil {
		return "", err
	}
	order := []uint16{uint16(num)}
	if v, err := readEFIVar(dir, "BootOrder"); err == nil {
		for i := 0; i+1 < len(v); i += 2 {
			if n := binary.LittleEndian.Uint16(v[i:]); !slices.Contains(order, n) {
				order = append(order, n)
			}
		}
	}
	b := make([]byte, 2*len(order))
	for i, n := range order {
		binary.LittleEndian.PutUint16(b[2*i:], n)
	}
	if err := writeEFIVar(dir, "BootOrder", b); err != nil {
		return "", err
	}
	return name, nil
}
