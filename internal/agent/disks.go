package agent

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Disk is a block device as the root device hints see it. Field names follow
// Ironic's inventory (name, size in bytes, model, vendor, serial, wwn, ...).
type Disk struct {
	Name               string // /dev/sda
	Size               int64  // bytes
	Model              string
	Vendor             string
	Serial             string
	WWN                string
	WWNWithExtension   string
	WWNVendorExtension string
	Rotational         bool
	Removable          bool
	ReadOnly           bool
	HCTL               string // SCSI host:channel:target:lun
	ByPath             string // /dev/disk/by-path/...
}

// DiskFilter widens what ListDisksFiltered returns.
type DiskFilter struct {
	Virtual   bool // include loop, ram, zram, dm, nbd devices
	Removable bool // include removable media
	ReadOnly  bool // include read-only devices
}

var virtualPrefixes = []string{"loop", "ram", "zram", "dm-", "nbd", "sr", "fd"}

var hctlRe = regexp.MustCompile(`^\d+:\d+:\d+:\d+$`)

// ListDisks lists the disks under sysRoot (the filesystem root: "/" on a
// node, a fake tree in tests), reading sysRoot/sys/block and
// sysRoot/dev/disk/by-path. Loop, ram, zram, dm, nbd, optical and floppy
// devices, removable and read-only disks and empty devices are skipped.
func ListDisks(sysRoot string) ([]Disk, error) {
	return ListDisksFiltered(sysRoot, DiskFilter{})
}

// ListDisksFiltered is ListDisks with some skipped kinds let through.
func ListDisksFiltered(sysRoot string, filter DiskFilter) ([]Disk, error) {
	blockDir := filepath.Join(sysRoot, "sys", "block")
	ents, err := os.ReadDir(blockDir)
	if err != nil {
		return nil, fmt.Errorf("list disks: %w", err)
	}
	byPath := readByPath(filepath.Join(sysRoot, "dev", "disk", "by-path"))
	var disks []Disk
	for _, e := range ents {
		name := e.Name()
		if !filter.Virtual && hasAnyPrefix(name, virtualPrefixes) {
			continue
		}
		d, err := readDisk(filepath.Join(blockDir, name), name)
		if err != nil {
			return nil, fmt.Errorf("list disks: %w", err)
		}
		if d.Size == 0 || (d.Removable && !filter.Removable) || (d.ReadOnly && !filter.ReadOnly) {
			continue
		}
		d.ByPath = byPath[name]
		disks = append(disks, d)
	}
	sort.Slice(disks, func(i, j int) bool { return disks[i].Name < disks[j].Name })
	return disks, nil
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func readDisk(dir, name string) (Disk, error) {
	d := Disk{Name: "/dev/" + name}
	sectors, err := readSysInt(filepath.Join(dir, "size"))
	if err != nil {
		return d, err
	}
	if sectors < 0 || sectors > math.MaxInt64/512 {
		return d, fmt.Errorf("read %s: %d sectors is not a disk size", filepath.Join(dir, "size"), sectors)
	}
	d.Size = sectors * 512 // sysfs size is always in 512-byte units
	rot, _ := readSysInt(filepath.Join(dir, "queue", "rotational"))
	rem, _ := readSysInt(filepath.Join(dir, "removable"))
	ro, _ := readSysInt(filepath.Join(dir, "ro"))
	d.Rotational, d.Removable, d.ReadOnly = rot == 1, rem == 1, ro == 1
	dev := filepath.Join(dir, "device")
	d.Model = readSysString(filepath.Join(dev, "model"))
	d.Vendor = readSysString(filepath.Join(dev, "vendor"))
	d.Serial = firstNonEmpty(
		readSysString(filepath.Join(dev, "serial")), // nvme, some scsi
		readSysString(filepath.Join(dir, "serial")), // virtio-blk
		readVPDSerial(filepath.Join(dev, "vpd_pg80")),
	)
	wwid := firstNonEmpty(readSysString(filepath.Join(dev, "wwid")), readSysString(filepath.Join(dir, "wwid")))
	d.WWN, d.WWNWithExtension, d.WWNVendorExtension = splitWWID(wwid)
	if target, err := os.Readlink(dev); err == nil && hctlRe.MatchString(filepath.Base(target)) {
		d.HCTL = filepath.Base(target)
	}
	return d, nil
}

// splitWWID turns a sysfs wwid into udev's ID_WWN, ID_WWN_WITH_EXTENSION and
// ID_WWN_VENDOR_EXTENSION: "naa." identifiers become 0x-prefixed hex, a
// 32-digit NAA type 6 splitting into the WWN and its vendor extension; other
// designators (eui., t10.) are kept as they are.
func splitWWID(wwid string) (wwn, withExt, vendorExt string) {
	wwid = strings.ToLower(strings.TrimSpace(wwid))
	hexID, ok := strings.CutPrefix(wwid, "naa.")
	if !ok {
		return wwid, wwid, ""
	}
	if len(hexID) == 32 {
		return "0x" + hexID[:16], "0x" + hexID[:16] + "0x" + hexID[16:], "0x" + hexID[16:]
	}
	return "0x" + hexID, "0x" + hexID, ""
}

// readVPDSerial reads the unit serial number from a VPD page 0x80 dump.
func readVPDSerial(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 4 || b[1] != 0x80 {
		return ""
	}
	n := int(b[2])<<8 | int(b[3])
	b = b[4:]
	if n < len(b) {
		b = b[:n]
	}
	return strings.TrimSpace(strings.Trim(string(b), "\x00"))
}

func readByPath(dir string) map[string]string {
	out := map[string]string{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return out
	}
	for _, e := range ents {
		link := filepath.Join(dir, e.Name())
		target, err := os.Readlink(link)
		if err != nil {
			continue
		}
		base := filepath.Base(target)
		// Partitions have their own links (-partN); keep the whole-disk one.
		if strings.Contains(e.Name(), "-part") {
			continue
		}
		if _, dup := out[base]; !dup {
			out[base] = filepath.Join("/dev/disk/by-path", e.Name())
		}
	}
	return out
}

func readSysInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	return n, nil
}

func readSysString(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
