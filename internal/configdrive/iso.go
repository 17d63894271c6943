package configdrive

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
)

const sector = 2048

// stamp is the fixed time every date in the image carries, so that the same input always
// gives the same bytes.
var stamp = time.Date(2012, 8, 10, 0, 0, 0, 0, time.UTC)

// File is one regular file of an image: a slash-separated path under the root and its
// content.
type File struct {
	Path string
	Data []byte
}

// dir is a directory of the image being laid out.
type dir struct {
	name    string // Rock Ridge name; "" for the root
	parent  *dir
	dirs    []*dir
	files   []*file
	num     int // path table number, from 1
	lba     int
	size    int // bytes, a whole number of sectors
	records [][]byte
}

type file struct {
	name string
	data []byte
	lba  int
}

// ISO returns an ISO 9660 image with the volume label and files given, with Rock Ridge
// names (so that Linux shows the names as given) and level 2 primary names. Directories
// are made as the paths need them; the output depends only on the arguments.
func ISO(label string, files []File) ([]byte, error) { return BootableISO(label, files, ElTorito{}) }

// ElTorito names the boot images of a bootable image: files of the image (paths as in
// File.Path), either may be empty. BIOS is a no-emulation boot image the firmware loads at
// 0x7C00 (GRUB's i386-pc-eltorito image: it needs no boot information table); EFI is an EFI
// System Partition image (a FAT filesystem holding EFI/BOOT/BOOTX64.EFI), of at most
// 32 MiB, the most an El Torito entry can give the size of.
type ElTorito struct {
	BIOS string
	EFI  string
}

// El Torito platform IDs.
const (
	platformX86 = 0
	platformEFI = 0xEF
)

// BootableISO is ISO with an El Torito boot catalogue for the boot images in boot (none:
// a plain ISO 9660 image, as ISO returns).
func BootableISO(label string, files []File, boot ElTorito) ([]byte, error) {
	if len(label) == 0 || len(label) > 32 {
		return nil, fmt.Errorf("iso: volume label %q: must be 1 to 32 bytes", label)
	}
	root := &dir{}
	for _, f := range files {
		p := path.Clean(f.Path)
		parts := strings.Split(p, "/")
		if p == "." || strings.HasPrefix(p, "/") || strings.HasPrefix(p, "..") || len(parts) > 7 {
			return nil, fmt.Errorf("iso: bad path %q", f.Path)
		}
		d := root
		for _, name := range parts[:len(parts)-1] {
			i := slices.IndexFunc(d.dirs, func(c *dir) bool { return c.name == name })
			if i < 0 {
				d.dirs = append(d.dirs, &dir{name: name, parent: d})
				i = len(d.dirs) - 1
			}
			d = d.dirs[i]
		}
		name := parts[len(parts)-1]
		if len(name) > 200 || slices.ContainsFunc(d.files, func(c *file) bool { return c.name == name }) {
			return nil, fmt.Errorf("iso: bad or repeated path %q", f.Path)
		}
		d.files = append(d.files, &file{name: name, data: f.Data})
	}
	// Path table order: breadth first, children by primary name.
	order := []*dir{root}
	for i := 0; i < len(order); i++ {
		d := order[i]
		d.num = i + 1
		slices.SortFunc(d.dirs, func(a, b *dir) int { return strings.Compare(dirID(a.name), dirID(b.name)) })
		order = append(order, d.dirs...)
	}
	for _, d := range order {
		seen := map[string]bool{}
		for _, c := range d.dirs {
			seen[dirID(c.name)] = true
		}
		for _, f := range d.files {
			id := fileID(f.name)
			if seen[id] || seen[strings.TrimSuffix(id, ".;1")] {
				return nil, fmt.Errorf("iso: %q has the same ISO 9660 name as another entry", f.name)
			}
			seen[id] = true
		}
		if len(seen) != len(d.dirs)+len(d.files) {
			return nil, fmt.Errorf("iso: two directories in %q have the same ISO 9660 name", d.name)
		}
	}
	pathTable := func(big bool) []byte {
		var b []byte
		for _, d := range order {
			id := []byte{0}
			parent := 1
			if d.parent != nil {
				id, parent = []byte(dirID(d.name)), d.parent.num
			}
			rec := make([]byte, 8, 8+len(id)+1)
			rec[0] = byte(len(id))
			if big {
				binary.BigEndian.PutUint32(rec[2:], uint32(d.lba))
				binary.BigEndian.PutUint16(rec[6:], uint16(parent))
			} else {
				binary.LittleEndian.PutUint32(rec[2:], uint32(d.lba))
				binary.LittleEndian.PutUint16(rec[6:], uint16(parent))
			}
			rec = append(rec, id...)
			if len(id)%2 == 1 {
				rec = append(rec, 0)
			}
			b = append(b, rec...)
		}
		return b
	}
	var bootFiles [2]*file // BIOS, EFI
	for i, p := range [...]string{boot.BIOS, boot.EFI} {
		if p == "" {
			continue
		}
		f := findFile(root, p)
		if f == nil {
			return nil, fmt.Errorf("iso: boot image %q is not one of the files", p)
		}
		if len(f.data) == 0 || len(f.data) > 0xFFFF*512 {
			return nil, fmt.Errorf("iso: boot image %q has %d bytes: it must have 1 to %d", p, len(f.data), 0xFFFF*512)
		}
		if i == 0 {
			if len(f.data) < 64 {
				return nil, fmt.Errorf("iso: BIOS boot image %q has %d bytes: too small for a boot information table", p, len(f.data))
			}
			f.data = slices.Clone(f.data) // the boot information table is written into it
		}
		bootFiles[i] = f
	}
	bootable := bootFiles[0] != nil || bootFiles[1] != nil
	ptSize := len(pathTable(false))
	ptSectors := sectors(ptSize)
	// Lay out: 16 system sectors, PVD, [boot record], terminator, [boot catalogue], L and M
	// path tables, directories, files.
	ptStart := 18
	if bootable {
		ptStart = 20
	}
	next := ptStart + 2*ptSectors
	// Directory sizes do not depend on addresses, so a first pass with zeros sizes them.
	for pass := 0; pass < 2; pass++ {
		lba := next
		for _, d := range order {
			d.lba = lba
			d.records = dirRecords(d)
			d.size = packedSize(d.records)
			lba += d.size / sector
		}
		for _, d := range order {
			slices.SortFunc(d.files, func(a, b *file) int { return strings.Compare(fileID(a.name), fileID(b.name)) })
			for _, f := range d.files {
				f.lba = lba
				lba += sectors(len(f.data))
			}
		}
		if pass == 1 {
			next = lba
		}
	}
	total := next
	if bootable {
		// 300 KiB of zeros at the end, as mkisofs pads: BIOS readers (GRUB's biosdisk on
		// SeaBIOS) read ahead in whole blocks and get garbage for a file that ends the image.
		total += 150
	}
	img := make([]byte, total*sector)
	pvd := img[16*sector:]
	pvd[0] = 1
	copy(pvd[1:], "CD001")
	pvd[6] = 1
	pad(pvd[8:40], "LINUX")
	pad(pvd[40:72], label)
	both32(pvd[80:], uint32(total))
	both16(pvd[120:], 1)
	both16(pvd[124:], 1)
	both16(pvd[128:], sector)
	both32(pvd[132:], uint32(ptSize))
	binary.LittleEndian.PutUint32(pvd[140:], uint32(ptStart))
	binary.BigEndian.PutUint32(pvd[148:], uint32(ptStart+ptSectors))
	copy(pvd[156:190], record(root, []byte{0}, nil, true))
	for _, r := range [][2]int{{190, 318}, {318, 446}, {446, 574}, {574, 702}, {702, 739}, {739, 776}, {776, 813}} {
		pad(pvd[r[0]:r[1]], "")
	}
	pad(pvd[318:446], "IRONWORK")
	pad(pvd[574:702], "IRONWORK CONFIGDRIVE")
	longDate(pvd[813:], stamp)
	longDate(pvd[830:], stamp)
	copy(pvd[847:], "0000000000000000")
	copy(pvd[864:], "0000000000000000")
	pvd[881] = 1
	termAt := 17
	if bootable {
		termAt = 18
		const catalogue = 19
		br := img[17*sector:]
		copy(br[1:], "CD001")
		br[6] = 1
		copy(br[7:], "EL TORITO SPECIFICATION")
		binary.LittleEndian.PutUint32(br[71:], catalogue)
		writeCatalogue(img[catalogue*sector:(catalogue+1)*sector], bootFiles[0], bootFiles[1])
		if f := bootFiles[0]; f != nil {
			bootInfoTable(f) // before the files are copied in below
		}
		if f := bootFiles[1]; f != nil {
			efiPartition(img, f)
		}
	}
	term := img[termAt*sector:]
	term[0] = 255
	copy(term[1:], "CD001")
	term[6] = 1
	copy(img[ptStart*sector:], pathTable(false))
	copy(img[(ptStart+ptSectors)*sector:], pathTable(true))
	for _, d := range order {
		off := d.lba * sector
		for _, r := range d.records {
			if (off%sector)+len(r) > sector {
				off += sector - off%sector
			}
			copy(img[off:], r)
			off += len(r)
		}
		for _, f := range d.files {
			copy(img[f.lba*sector:], f.data)
		}
	}
	return img, nil
}

func sectors(n int) int { return (n + sector - 1) / sector }

// efiPartition writes an MBR in the system area (sector 0, unused by ISO 9660 and El Torito)
// with one partition of type 0xEF (EFI System Partition) over the EFI boot image, so that UEFI
// firmware also boots the image from a disk, such as a BMC's virtual USB stick, as it boots
// an xorriso-made hybrid ISO. The partition is in 512-byte blocks; CHS fields say "use LBA".
func efiPartition(img []byte, efi *file) {
	e := img[446:462]
	e[0] = 0x00                            // not active
	copy(e[1:4], []byte{0xFE, 0xFF, 0xFF}) // CHS start: beyond CHS
	e[4] = 0xEF
	copy(e[5:8], []byte{0xFE, 0xFF, 0xFF}) // CHS end
	binary.LittleEndian.PutUint32(e[8:], uint32(efi.lba*(sector/512)))
	binary.LittleEndian.PutUint32(e[12:], uint32((len(efi.data)+511)/512))
	img[510], img[511] = 0x55, 0xAA
}

// findFile finds the file at path p in the tree under root.
func findFile(root *dir, p string) *file {
	parts := strings.Split(path.Clean(p), "/")
	d := root
	for _, name := range parts[:len(parts)-1] {
		i := slices.IndexFunc(d.dirs, func(c *dir) bool { return c.name == name })
		if i < 0 {
			return nil
		}
		d = d.dirs[i]
	}
	i := slices.IndexFunc(d.files, func(c *file) bool { return c.name == parts[len(parts)-1] })
	if i < 0 {
		return nil
	}
	return d.files[i]
}

// bootInfoTable writes the boot information table (mkisofs' -boot-info-table) into the BIOS
// image (a copy of the caller's): the primary volume descriptor's and the image's own
// addresses, its length and the sum of its 32-bit words from byte 64. GRUB's and ISOLINUX's
// CD boot code read the rest of themselves with it.
func bootInfoTable(f *file) {
	at := f.data
	var sum uint32
	for i := 64; i+4 <= len(f.data); i += 4 {
		sum += binary.LittleEndian.Uint32(f.data[i:])
	}
	if rest := len(f.data) % 4; rest != 0 && len(f.data) > 64 {
		var last [4]byte
		copy(last[:], f.data[len(f.data)-rest:])
		sum += binary.LittleEndian.Uint32(last[:])
	}
	binary.LittleEndian.PutUint32(at[8:], 16)
	binary.LittleEndian.PutUint32(at[12:], uint32(f.lba))
	binary.LittleEndian.PutUint32(at[16:], uint32(len(f.data)))
	binary.LittleEndian.PutUint32(at[20:], sum)
	clear(at[24:64])
}

// writeCatalogue writes an El Torito boot catalogue: the validation entry, the default entry
// (BIOS when there is a BIOS image), and a section for EFI. Entries load no-emulation images;
// counts are of 512-byte virtual sectors.
func writeCatalogue(cat []byte, bios, efi *file) {
	platform := byte(platformX86)
	first, rest := bios, efi
	if bios == nil {
		platform, first, rest = platformEFI, efi, nil
	}
	v := cat[0:32]
	v[0] = 1
	v[1] = platform
	copy(v[4:28], "IRONWORK")
	v[30], v[31] = 0x55, 0xAA
	var sum uint16
	for i := 0; i < 32; i += 2 {
		sum += binary.LittleEndian.Uint16(v[i:])
	}
	binary.LittleEndian.PutUint16(v[28:], -sum)
	entry := func(e []byte, f *file, count int) {
		e[0] = 0x88 // bootable, no emulation
		binary.LittleEndian.PutUint16(e[6:], uint16(count))
		binary.LittleEndian.PutUint32(e[8:], uint32(f.lba))
	}
	// BIOS loads 4 virtual sectors (2 KiB) of a no-emulation image, which then reads the
	// rest itself, as GRUB's and ISOLINUX's do; UEFI takes the whole partition image.
	count := (len(first.data) + 511) / 512
	if first == bios {
		count = 4
	}
	entry(cat[32:64], first, count)
	if rest != nil {
		h := cat[64:96]
		h[0] = 0x91 // the last section header
		h[1] = platformEFI
		binary.LittleEndian.PutUint16(h[2:], 1)
		entry(cat[96:128], rest, (len(rest.data)+511)/512)
	}
}

// packedSize is the size of a directory's records, none crossing a sector.
func packedSize(recs [][]byte) int {
	off := 0
	for _, r := range recs {
		if (off%sector)+len(r) > sector {
			off += sector - off%sector
		}
		off += len(r)
	}
	return sectors(off) * sector
}

// dirRecords are a directory's records: ".", "..", then the children by primary name.
func dirRecords(d *dir) [][]byte {
	parent := d.parent
	if parent == nil {
		parent = d
	}
	recs := [][]byte{record(d, []byte{0}, nil, d.parent == nil), record(parent, []byte{1}, nil, false)}
	type child struct {
		id  string
		rec []byte
	}
	var cs []child
	for _, c := range d.dirs {
		cs = append(cs, child{dirID(c.name), record(c, []byte(dirID(c.name)), []byte(c.name), false)})
	}
	for _, f := range d.files {
		cs = append(cs, child{fileID(f.name), fileRecord(f)})
	}
	slices.SortFunc(cs, func(a, b child) int { return strings.Compare(a.id, b.id) })
	for _, c := range cs {
		recs = append(recs, c.rec)
	}
	return recs
}

// record is a directory's record; rootDot adds the SUSP and Rock Ridge announcements.
func record(d *dir, id, rrName []byte, rootDot bool) []byte {
	var su []byte
	if rootDot {
		su = append(su, 'S', 'P', 7, 1, 0xBE, 0xEF, 0)
	}
	su = append(su, rrEntries(0o040555, 2, rrName)...)
	if rootDot {
		su = append(su, erEntry()...)
	}
	return dirRecord(d.lba, d.size, 2, id, su)
}

func fileRecord(f *file) []byte {
	return dirRecord(f.lba, len(f.data), 0, []byte(fileID(f.name)), rrEntries(0o100444, 1, []byte(f.name)))
}

// rrEntries are the RR, PX, TF and (when named) NM entries of a record.
func rrEntries(mode, links uint32, name []byte) []byte {
	flags := byte(0x01 | 0x80) // PX, TF
	if name != nil {
		flags |= 0x08 // NM
	}
	b := []byte{'R', 'R', 5, 1, flags}
	px := make([]byte, 36)
	copy(px, []byte{'P', 'X', 36, 1})
	both32(px[4:], mode)
	both32(px[12:], links)
	b = append(b, px...)
	tf := []byte{'T', 'F', 5 + 7, 1, 0x02}
	tf = append(tf, shortDate(stamp)...)
	b = append(b, tf...)
	if name != nil {
		b = append(b, 'N', 'M', byte(5+len(name)), 1, 0)
		b = append(b, name...)
	}
	return b
}

func erEntry() []byte {
	const id, des, src = "RRIP_1991A", "THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS", "PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE."
	b := []byte{'E', 'R', byte(8 + len(id) + len(des) + len(src)), 1, byte(len(id)), byte(len(des)), byte(len(src)), 1}
	return append(append(append(b, id...), des...), src...)
}

func dirRecord(lba, size int, flags byte, id, su []byte) []byte {
	n := 33 + len(id)
	if n%2 == 1 {
		n++
	}
	r := make([]byte, n, n+len(su)+1)
	both32(r[2:], uint32(lba))
	both32(r[10:], uint32(size))
	copy(r[18:25], shortDate(stamp))
	r[25] = flags
	both16(r[28:], 1)
	r[32] = byte(len(id))
	copy(r[33:], id)
	r = append(r, su...)
	if len(r)%2 == 1 {
		r = append(r, 0)
	}
	r[0] = byte(len(r))
	return r
}

// dirID and fileID are the primary (level 2) names: upper case d-characters.
func dirID(name string) string { return dchars(name, 31) }

func fileID(name string) string {
	base, ext := name, ""
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		base, ext = name[:i], name[i+1:]
	}
	ext = dchars(ext, 8)
	return dchars(base, 28-len(ext)) + "." + ext + ";1"
}

func dchars(s string, max int) string {
	var b strings.Builder
	for _, c := range strings.ToUpper(s) {
		if b.Len() == max {
			break
		}
		if c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func pad(b []byte, s string) {
	copy(b, bytes.Repeat([]byte{' '}, len(b)))
	copy(b, s)
}

func both16(b []byte, v uint16) {
	binary.LittleEndian.PutUint16(b, v)
	binary.BigEndian.PutUint16(b[2:], v)
}

func both32(b []byte, v uint32) {
	binary.LittleEndian.PutUint32(b, v)
	binary.BigEndian.PutUint32(b[4:], v)
}

func shortDate(t time.Time) []byte {
	return []byte{byte(t.Year() - 1900), byte(t.Month()), byte(t.Day()), byte(t.Hour()), byte(t.Minute()), byte(t.Second()), 0}
}

func longDate(b []byte, t time.Time) {
	copy(b, t.Format("20060102150405")+"00")
	b[16] = 0
}
