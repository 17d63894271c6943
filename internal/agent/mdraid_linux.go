//go:build linux

package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Linux md (software RAID) through the kernel's own ioctls, without mdadm: the kernel writes
// version 0.90 superblocks, which sit in the last 64 KiB-aligned 64 KiB of each member. The
// array's data therefore starts at byte 0 of every member: a whole-disk image written to a
// RAID-1 array makes each member disk look like the image alone, and either disk boots by
// itself. 0.90 limits members to 2 TiB.

// The md ioctls (linux/raid/md_u.h): _IOW(9, nr, struct) and _IO(9, nr).
const (
	mdSetArrayInfo = 0x40480923 // _IOW(MD_MAJOR, 0x23, mdu_array_info_t)
	mdAddNewDisk   = 0x40140921 // _IOW(MD_MAJOR, 0x21, mdu_disk_info_t)
	mdRunArray     = 0x400c0930 // _IOW(MD_MAJOR, 0x30, mdu_param_t)
	mdStopArray    = 0x932      // _IO(MD_MAJOR, 0x32)

	mdMajor      = 9
	mdDiskActive = 1 << 1 // MD_DISK_ACTIVE
	mdDiskSync   = 1 << 2 // MD_DISK_SYNC
	mdSBClean    = 1 << 0 // MD_SB_CLEAN: no initial resync
	md090Magic   = 0xa92b4efc
)

// mduArrayInfo is mdu_array_info_t.
type mduArrayInfo struct {
	MajorVersion, MinorVersion, PatchVersion int32
	Ctime                                    uint32
	Level, Size, NrDisks, RaidDisks          int32
	MdMinor, NotPersistent                   int32
	Utime                                    uint32
	State, ActiveDisks, WorkingDisks         int32
	FailedDisks, SpareDisks, Layout          int32
	ChunkSize                                int32
}

// mduDiskInfo is mdu_disk_info_t.
type mduDiskInfo struct{ Number, Major, Minor, RaidDisk, State int32 }

// mduParam is mdu_param_t.
type mduParam struct{ PersonalityChunk, ChunkSize, MaxFault int32 }

func mdIoctl(f *os.File, req uintptr, arg unsafe.Pointer) error {
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), req, uintptr(arg)); errno != 0 {
		return errno
	}
	return nil
}

// MDDevice is the path of md array minor (made when missing).
func MDDevice(minor int) (string, error) {
	p := fmt.Sprintf("/dev/md%d", minor)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	if err := unix.Mknod(p, unix.S_IFBLK|0o600, int(unix.Mkdev(mdMajor, uint32(minor)))); err != nil && !errors.Is(err, unix.EEXIST) {
		return "", fmt.Errorf("make %s: %w", p, err)
	}
	return p, nil
}

type mdMember struct {
	path         string
	major, minor uint32
	size         int64
}

func statMember(path string) (mdMember, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return mdMember{}, fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return mdMember{}, fmt.Errorf("%s is not a block device", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return mdMember{}, err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return mdMember{}, fmt.Errorf("size of %s: %w", path, err)
	}
	return mdMember{path: path, major: unix.Major(st.Rdev), minor: unix.Minor(st.Rdev), size: size}, nil
}

// CreateMD builds md array minor at RAID level (0 or 1) over whole devices, with 0.90
// superblocks, marked clean (no initial resync: what the deploy writes goes to every member).
func CreateMD(minor, level int, devices []string) (string, error) {
	if level != 0 && level != 1 {
		return "", fmt.Errorf("create md%d: RAID level %d is not supported (0 and 1 are)", minor, level)
	}
	if len(devices) < 2 {
		return "", fmt.Errorf("create md%d: RAID %d needs at least 2 devices, got %d", minor, level, len(devices))
	}
	var members []mdMember
	smallest := int64(-1)
	for _, d := range devices {
		m, err := statMember(d)
		if err != nil {
			return "", fmt.Errorf("create md%d: %w", minor, err)
		}
		if m.size > 2<<40 {
			return "", fmt.Errorf("create md%d: %s is larger than 2 TiB, the limit of md 0.90 metadata", minor, d)
		}
		members = append(members, m)
		if off := md090Offset(m.size); smallest < 0 || off < smallest {
			smallest = off
		}
	}
	if smallest <= 0 {
		return "", fmt.Errorf("create md%d: a member is too small", minor)
	}
	path, err := MDDevice(minor)
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("create md%d: open %s: %w", minor, path, err)
	}
	defer f.Close()
	now := uint32(time.Now().Unix())
	n := int32(len(members))
	info := mduArrayInfo{MajorVersion: 0, MinorVersion: 90, Ctime: now, Level: int32(level), Size: int32(smallest >> 10),
		NrDisks: n, RaidDisks: n, MdMinor: int32(minor), Utime: now, State: mdSBClean, ActiveDisks: n, WorkingDisks: n,
		ChunkSize: 64 << 10}
	if err := mdIoctl(f, mdSetArrayInfo, unsafe.Pointer(&info)); err != nil {
		return "", fmt.Errorf("create md%d: SET_ARRAY_INFO: %w", minor, err)
	}
	for i, m := range members {
		d := mduDiskInfo{Number: int32(i), Major: int32(m.major), Minor: int32(m.minor), RaidDisk: int32(i), State: mdDiskActive | mdDiskSync}
		if err := mdIoctl(f, mdAddNewDisk, unsafe.Pointer(&d)); err != nil {
			_ = mdIoctl(f, mdStopArray, nil)
			return "", fmt.Errorf("create md%d: ADD_NEW_DISK %s: %w", minor, m.path, err)
		}
	}
	var p mduParam
	if err := mdIoctl(f, mdRunArray, unsafe.Pointer(&p)); err != nil {
		_ = mdIoctl(f, mdStopArray, nil)
		return "", fmt.Errorf("create md%d: RUN_ARRAY: %w", minor, err)
	}
	return path, nil
}

// AssembleMD starts md array minor from members that carry its 0.90 superblocks.
func AssembleMD(minor int, devices []string) (string, error) {
	path, err := MDDevice(minor)
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("assemble md%d: open %s: %w", minor, path, err)
	}
	defer f.Close()
	info := mduArrayInfo{MajorVersion: 0, MinorVersion: 90}
	if err := mdIoctl(f, mdSetArrayInfo, unsafe.Pointer(&info)); err != nil {
		return "", fmt.Errorf("assemble md%d: SET_ARRAY_INFO: %w", minor, err)
	}
	for _, dev := range devices {
		m, err := statMember(dev)
		if err != nil {
			_ = mdIoctl(f, mdStopArray, nil)
			return "", fmt.Errorf("assemble md%d: %w", minor, err)
		}
		d := mduDiskInfo{Major: int32(m.major), Minor: int32(m.minor)}
		if err := mdIoctl(f, mdAddNewDisk, unsafe.Pointer(&d)); err != nil {
			_ = mdIoctl(f, mdStopArray, nil)
			return "", fmt.Errorf("assemble md%d: ADD_NEW_DISK %s: %w", minor, dev, err)
		}
	}
	var p mduParam
	if err := mdIoctl(f, mdRunArray, unsafe.Pointer(&p)); err != nil {
		_ = mdIoctl(f, mdStopArray, nil)
		return "", fmt.Errorf("assemble md%d: RUN_ARRAY: %w", minor, err)
	}
	return path, nil
}

// StopMD stops md array minor.
func StopMD(minor int) error {
	path, err := MDDevice(minor)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("stop md%d: %w", minor, err)
	}
	defer f.Close()
	if err := mdIoctl(f, mdStopArray, nil); err != nil {
		return fmt.Errorf("stop md%d: %w", minor, err)
	}
	return nil
}

// MDSuperblock is what a member's 0.90 superblock says.
type MDSuperblock struct {
	Minor, Level, RaidDisks int
	UUID                    [4]uint32
}

// ReadMDSuperblock reads the 0.90 superblock of a device; ok is false when it has none.
func ReadMDSuperblock(device string) (MDSuperblock, bool, error) {
	f, err := os.Open(device)
	if err != nil {
		return MDSuperblock{}, false, err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return MDSuperblock{}, false, fmt.Errorf("size of %s: %w", device, err)
	}
	off := md090Offset(size)
	if off <= 0 {
		return MDSuperblock{}, false, nil
	}
	buf := make([]byte, 128)
	if _, err := f.ReadAt(buf, off); err != nil {
		return MDSuperblock{}, false, fmt.Errorf("read the md superblock of %s: %w", device, err)
	}
	w := func(i int) uint32 { return binary.LittleEndian.Uint32(buf[4*i:]) }
	if w(0) != md090Magic || w(1) != 0 || w(2) != 90 {
		return MDSuperblock{}, false, nil
	}
	return MDSuperblock{Minor: int(w(11)), Level: int(int32(w(7))), RaidDisks: int(w(10)),
		UUID: [4]uint32{w(5), w(13), w(14), w(15)}}, true, nil
}

// WipeMDSuperblock zeroes a device's 0.90 superblock area.
func WipeMDSuperblock(device string) error {
	f, err := os.OpenFile(device, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("size of %s: %w", device, err)
	}
	if off := md090Offset(size); off > 0 {
		if _, err := f.WriteAt(make([]byte, md090Reserved), off); err != nil {
			return fmt.Errorf("wipe the md superblock of %s: %w", device, err)
		}
	}
	return f.Sync()
}
