package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// errNoMBR means sector 0 carries no 0x55AA boot signature.
var errNoMBR = errors.New("no MBR")

const (
	mbrEntries      = 446
	mbrTypeEmpty    = 0x00
	mbrTypeGPT      = 0xee
	mbrTypeLinux    = 0x83
	mbrMaxSectors   = 1 << 32
	mbrSignatureOff = 440
)

// mbrPartition is one primary partition entry.
type mbrPartition struct {
	number  int // 1..4
	typ     byte
	boot    bool
	start   uint32 // LBA
	sectors uint32
}

// parseMBR reads the disk signature and the four primary entries of sector
// 0. Logical partitions inside an extended partition are not followed.
func parseMBR(b []byte) (sig uint32, parts []mbrPartition, err error) {
	if len(b) < 512 || b[510] != 0x55 || b[511] != 0xaa {
		return 0, nil, errNoMBR
	}
	sig = binary.LittleEndian.Uint32(b[mbrSignatureOff:])
	for i := range 4 {
		e := b[mbrEntries+16*i : mbrEntries+16*(i+1)]
		if e[0] != 0 && e[0] != 0x80 {
			return 0, nil, fmt.Errorf("parse MBR: entry %d has boot flag %#02x", i+1, e[0])
		}
		p := mbrPartition{
			number:  i + 1,
			typ:     e[4],
			boot:    e[0] == 0x80,
			start:   binary.LittleEndian.Uint32(e[8:]),
			sectors: binary.LittleEndian.Uint32(e[12:]),
		}
		if p.typ == mbrTypeEmpty || p.sectors == 0 {
			continue
		}
		parts = append(parts, p)
	}
	return sig, parts, nil
}

// putMBRPartition writes entry p into sector 0 (b), with the CHS fields set
// to the "use LBA" values modern tools write.
func putMBRPartition(b []byte, p mbrPartition) {
	e := b[mbrEntries+16*(p.number-1) : mbrEntries+16*p.number]
	clear(e)
	if p.boot {
		e[0] = 0x80
	}
	copy(e[1:4], []byte{0xfe, 0xff, 0xff})
	e[4] = p.typ
	copy(e[5:8], []byte{0xfe, 0xff, 0xff})
	binary.LittleEndian.PutUint32(e[8:], p.start)
	binary.LittleEndian.PutUint32(e[12:], p.sectors)
}
