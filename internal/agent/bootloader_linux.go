//go:build linux

package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// partitionWait bounds the wait for the kernel's device node of a new partition.
const partitionWait = 5 * time.Second

// blockPartition is a block device for one partition: the kernel's node (/dev/vda2) when
// the disk is a block device whose table the kernel has read, else a loop device over the
// partition's byte range (a disk image file in tests, or a kernel that did not re-read).
type blockPartition struct {
	dev  string
	loop *os.File
}

func (b *blockPartition) close() error {
	if b.loop == nil {
		return nil
	}
	err := unix.IoctlSetInt(int(b.loop.Fd()), unix.LOOP_CLR_FD, 0)
	return errors.Join(err, b.loop.Close())
}

func openPartition(ctx context.Context, sysRoot, disk string, p Partition) (*blockPartition, error) {
	fi, err := os.Stat(disk)
	if err != nil {
		return nil, err
	}
	if fi.Mode()&os.ModeDevice != 0 {
		name := filepath.Base(disk)
		deadline := time.Now().Add(partitionWait)
		for {
			if dev := kernelPartition(sysRoot, name, p); dev != "" {
				return &blockPartition{dev: dev}, nil
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return loopPartition(disk, p)
}

// kernelPartition finds /dev/<name> of partition p of disk name in sysfs (start and number
// must match the table just written).
func kernelPartition(sysRoot, disk string, p Partition) string {
	dir := filepath.Join(sysRoot, "sys", "class", "block", disk)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), disk) {
			continue
		}
		n, err1 := readSysInt(filepath.Join(dir, e.Name(), "partition"))
		start, err2 := readSysInt(filepath.Join(dir, e.Name(), "start"))
		if err1 == nil && err2 == nil && int(n) == p.Number && start*512 == p.Start {
			if dev := filepath.Join(sysRoot, "dev", e.Name()); exists(dev) {
				return dev
			}
		}
	}
	return ""
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// loopPartition attaches a free loop device to [p.Start, p.Start+p.Size) of disk.
func loopPartition(disk string, p Partition) (*blockPartition, error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open loop control (loop module): %w", err)
	}
	defer ctl.Close()
	backing, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer backing.Close()
	for range 8 { // another process may take the free device first
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("find a free loop device: %w", err)
		}
		dev := fmt.Sprintf("/dev/loop%d", n)
		lf, err := os.OpenFile(dev, os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", dev, err)
		}
		cfg := unix.LoopConfig{Fd: uint32(backing.Fd())}
		cfg.Info.Offset = uint64(p.Start)
		cfg.Info.Sizelimit = uint64(p.Size)
		cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
		if err := unix.IoctlLoopConfigure(int(lf.Fd()), &cfg); err != nil {
			lf.Close()
			if errors.Is(err, unix.EBUSY) {
				continue
			}
			return nil, fmt.Errorf("attach %s: %w", dev, err)
		}
		return &blockPartition{dev: dev, loop: lf}, nil
	}
	return nil, errors.New("attach a loop device: every free one was taken")
}

// mountFS mounts the file system at dev on dir, its type read from its superblock.
func mountFS(dev, dir string, flags uintptr) error {
	f, err := os.Open(dev)
	if err != nil {
		return err
	}
	b := make([]byte, 2048)
	_, err = f.ReadAt(b, 0)
	f.Close()
	if err != nil {
		return fmt.Errorf("read %s: %w", dev, err)
	}
	var fstype string
	switch {
	case b[1024+0x38] == 0x53 && b[1024+0x39] == 0xef:
		fstype = "ext4" // ext4 mounts ext2 and ext3 too
	case string(b[0:4]) == "XFSB":
		fstype = "xfs"
	case b[510] == 0x55 && b[511] == 0xaa && (string(b[82:87]) == "FAT32" || string(b[54:57]) == "FAT"):
		fstype = "vfat"
	default:
		return fmt.Errorf("%s holds no ext2/3/4, XFS or FAT file system", dev)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(dev, dir, fstype, flags, ""); err != nil {
		return fmt.Errorf("mount %s (%s) on %s: %w", dev, fstype, dir, err)
	}
	return nil
}

// mounts unmounts what it mounted, last first.
type mounts []string

func (m *mounts) add(dir string) { *m = append(*m, dir) }

func (m *mounts) undo() error {
	var errs []error
	for i := len(*m) - 1; i >= 0; i-- {
		if err := unix.Unmount((*m)[i], 0); err != nil {
			// Busy (a process left behind by grub): detach lazily rather than leave it.
			if err2 := unix.Unmount((*m)[i], unix.MNT_DETACH); err2 != nil {
				errs = append(errs, fmt.Errorf("unmount %s: %w", (*m)[i], err))
			}
		}
	}
	*m = nil
	return errors.Join(errs...)
}

func installGRUBBIOS(ctx context.Context, req BootloaderRequest, root Partition, log *slog.Logger) (res BootloaderResult, err error) {
	res.Method = "grub-install i386-pc"
	work, err := os.MkdirTemp(req.WorkDir, "bootloader-")
	if err != nil {
		return res, err
	}
	defer os.Remove(work)
	bp, err := openPartition(ctx, req.SysRoot, req.Disk, root)
	if err != nil {
		return res, fmt.Errorf("%w: root partition: %w", ErrBootloader, err)
	}
	defer bp.close()
	var m mounts
	defer func() { err = errors.Join(err, m.undo()) }()
	if err := mountFS(bp.dev, work, 0); err != nil {
		return res, fmt.Errorf("%w: root partition: %w", ErrBootloader, err)
	}
	m.add(work)
	var grub string
	for _, c := range []string{"usr/sbin/grub-install", "usr/sbin/grub2-install", "sbin/grub-install", "sbin/grub2-install"} {
		if fi, err := os.Lstat(filepath.Join(work, c)); err == nil && !fi.IsDir() {
			grub = "/" + c
			break
		}
	}
	if grub == "" {
		return res, fmt.Errorf("%w: the image has no grub-install or grub2-install (in /usr/sbin or /sbin): a BIOS partition image needs GRUB", ErrBootloader)
	}
	for _, d := range []string{"dev", "proc", "sys"} {
		dst := filepath.Join(work, d)
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return res, fmt.Errorf("%w: %w", ErrBootloader, err)
		}
		if err := unix.Mount(filepath.Join(req.SysRoot, d), dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return res, fmt.Errorf("%w: bind /%s into the image: %w", ErrBootloader, d, err)
		}
		m.add(dst)
	}
	disk := req.Disk
	if rel, err := filepath.Rel(req.SysRoot, disk); err == nil && !strings.HasPrefix(rel, "..") {
		disk = "/" + rel
	}
	if bp.loop != nil {
		// No kernel partition node: grub-install could not map the root to the disk.
		return res, fmt.Errorf("%w: the kernel shows no device for partition %d of %s, which grub-install needs", ErrBootloader, root.Number, req.Disk)
	}
	run := func(args ...string) error {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(cctx, args[0], args[1:]...)
		cmd.Dir = "/"
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: work}
		out, err := cmd.CombinedOutput()
		log.Debug("ran in the image", "command", strings.Join(args, " "), "output", string(out))
		if err != nil {
			return fmt.Errorf("%w: %s in the image: %w: %s", ErrBootloader, strings.Join(args, " "), err, lastLines(string(out), 5))
		}
		return nil
	}
	if err := run(grub, "--target=i386-pc", "--boot-directory=/boot", disk); err != nil {
		return res, err
	}
	for _, c := range []string{"usr/sbin/grub-mkconfig", "usr/sbin/grub2-mkconfig"} {
		if exists(filepath.Join(work, c)) && exists(filepath.Join(work, "etc/grub.d")) {
			cfg := "/boot/grub/grub.cfg"
			if strings.Contains(c, "grub2") {
				cfg = "/boot/grub2/grub.cfg"
			}
			if err := run("/"+c, "-o", cfg); err != nil {
				return res, err
			}
			break
		}
	}
	unix.Sync()
	return res, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "; ")
}

func installUEFI(ctx context.Context, req BootloaderRequest, pt PartitionTable, root, esp Partition, log *slog.Logger) (res BootloaderResult, err error) {
	res.Method = "esp"
	work, err := os.MkdirTemp(req.WorkDir, "bootloader-")
	if err != nil {
		return res, err
	}
	defer os.Remove(work)
	rp, err := openPartition(ctx, req.SysRoot, req.Disk, root)
	if err != nil {
		return res, fmt.Errorf("%w: root partition: %w", ErrBootloader, err)
	}
	defer rp.close()
	esp2, err := newMtoolsESP(req.ToolDir, req.Disk, esp.Start)
	if err != nil {
		return res, err
	}
	var m mounts
	defer func() { err = errors.Join(err, m.undo()) }()
	if err := mountFS(rp.dev, work, unix.MS_RDONLY); err != nil {
		return res, fmt.Errorf("%w: root partition: %w", ErrBootloader, err)
	}
	m.add(work)
	loader, err := populateESP(ctx, filepath.Join(work, "boot", "efi"), esp2)
	if err != nil {
		return res, err
	}
	res.Loader = loaderPath(loader)
	if err := m.undo(); err != nil {
		return res, err
	}
	unix.Sync()
	vars := req.EFIVars
	if vars == "" {
		log.Info("no efivarfs given: the firmware finds the removable-media path only")
		return res, nil
	}
	if vars == SystemEFIVars && exists(filepath.Dir(vars)) && !exists(efiVarPath(vars, "BootOrder")) {
		// The ramdisk mounts no efivarfs of its own accord.
		if err := unix.Mount("efivarfs", vars, "efivarfs", 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			log.Warn("mount efivarfs", logKeyError, err)
		}
	}
	if !exists(vars) {
		log.Warn("no efivarfs (not booted in UEFI mode?): the firmware finds the removable-media path only", "efivars", vars)
		return res, nil
	}
	o := LoadOption{Attributes: loadOptActive, Description: "ironwork", PartNumber: uint32(esp.Number),
		PartStart: uint64(esp.Start / 512), PartSize: uint64(esp.Size / 512), File: res.Loader}
	if pt.Type == "gpt" {
		o.MBRType, o.SigType = 2, 2
		if o.Signature, err = parseGUID(esp.UUID); err != nil {
			return res, fmt.Errorf("%w: %w", ErrBootloader, err)
		}
	} else {
		o.MBRType, o.SigType = 1, 1
		sig, err := strconv.ParseUint(pt.DiskID, 16, 32)
		if err != nil {
			return res, fmt.Errorf("%w: MBR signature %q: %w", ErrBootloader, pt.DiskID, err)
		}
		o.Signature[0], o.Signature[1], o.Signature[2], o.Signature[3] = byte(sig), byte(sig>>8), byte(sig>>16), byte(sig>>24)
	}
	if res.BootEntry, err = SetBootEntry(vars, o); err != nil {
		return res, fmt.Errorf("%w: %w", ErrBootloader, err)
	}
	return res, nil
}

// fsImmutableFL is FS_IMMUTABLE_FL of linux/fs.h (chattr +i).
const fsImmutableFL = 0x10

// clearImmutable lifts efivarfs's immutable flag from an existing variable so it can be
// rewritten; a missing file or a file system without flags is fine.
func clearImmutable(p string) {
	f, err := os.Open(p)
	if err != nil {
		return
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil || flags&fsImmutableFL == 0 {
		return
	}
	_ = unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags&^fsImmutableFL))
}
