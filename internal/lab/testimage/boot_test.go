package testimage

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/internal/agent"
)

// Firmware files (Debian package ovmf).
const (
	ovmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	ovmfVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

// bootWait bounds one boot to both report lines (TCG: about 10 s BIOS, 15 s UEFI).
const bootWait = 120 * time.Second

// needTools skips unless everything Build and the boot tests use is here.
func needTools(t *testing.T, qemu bool) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (the lab runs as root)")
	}
	tools := []string{"grub-mkimage", "mformat", "mmd", "mcopy", "go"}
	if qemu {
		tools = append(tools, "qemu-system-x86_64", "xorriso")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (scripts/deps.sh installs it)", tool)
		}
	}
	for _, f := range []string{grubPCDir + "/boot.img", grubEFIDir + "/linux.mod"} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("%s missing: install grub-pc-bin and grub-efi-amd64-bin (scripts/deps.sh)", f)
		}
	}
	if qemu {
		if _, err := os.Stat(ovmfCode); err != nil {
			t.Skip("no OVMF (package ovmf)")
		}
	}
	dirs, _ := filepath.Glob("/var/cache/ironwork/kernel/*/vmlinuz")
	if len(dirs) == 0 {
		t.Skip("no kernel in /var/cache/ironwork/kernel (run scripts/kernel.sh)")
	}
	return filepath.Dir(dirs[0])
}

func buildImage(t *testing.T, kernel string) string {
	t.Helper()
	dir := t.TempDir()
	img := filepath.Join(dir, "instance.img")
	start := time.Now()
	sum, err := Build(t.Context(), img, Options{KernelDir: kernel, WorkDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built %s (sha256 %s) in %v", img, sum, time.Since(start).Round(time.Millisecond))
	return img
}

func TestBuildLayout(t *testing.T) {
	kernel := needTools(t, false)
	img := buildImage(t, kernel)
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != DefaultSize {
		t.Fatalf("image is %d bytes, want %d", len(b), DefaultSize)
	}
	// MBR: GRUB's boot code, one active ESP from sector 2048 to the end, slots 2-4 free.
	if b[510] != 0x55 || b[511] != 0xaa || !bytes.Contains(b[:440], []byte("GRUB")) {
		t.Fatal("sector 0 is not an MBR with GRUB's boot code")
	}
	e := b[446:462]
	if e[0] != 0x80 || e[4] != 0xef || binary.LittleEndian.Uint32(e[8:]) != 2048 ||
		int64(binary.LittleEndian.Uint32(e[12:])) != (DefaultSize-espStart)/512 {
		t.Fatalf("first partition entry % x, want an active ESP over the rest of the disk", e)
	}
	if !bytes.Equal(b[462:510], make([]byte, 48)) {
		t.Fatal("partition slots 2-4 are not free")
	}
	diskboot, err := os.ReadFile(grubPCDir + "/diskboot.img")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b[512:1024-12], diskboot[:512-12]) || binary.LittleEndian.Uint64(b[1024-12:]) != 2 ||
		binary.LittleEndian.Uint16(b[1024-4:]) == 0 {
		t.Fatal("sector 1 is not core.img's diskboot with its blocklist pointing at sector 2")
	}
	// The ESP holds the UEFI loader, the kernel and the initramfs.
	out, err := exec.Command("mdir", "-i", img+"@@1M", "-/", "-b", "::").CombinedOutput()
	if err != nil {
		t.Fatalf("mdir: %v: %s", err, out)
	}
	for _, f := range []string{"::/EFI/BOOT/BOOTX64.EFI", "::/vmlinuz", "::/initrd.img"} {
		if !bytes.Contains(out, []byte(f)) {
			t.Errorf("ESP lacks %s:\n%s", f, out)
		}
	}
}

func TestBoot(t *testing.T) {
	kernel := needTools(t, true)
	img := buildImage(t, kernel)
	cases := []struct {
		name, firmware string
		configDrive    bool
	}{
		{"bios", FirmwareBIOS, false},
		{"uefi", FirmwareUEFI, false},
		{"bios-configdrive", FirmwareBIOS, true},
		{"uefi-configdrive", FirmwareUEFI, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			disk := filepath.Join(t.TempDir(), "disk.img")
			copyImage(t, img, disk, 256<<20) // the VM's disk is larger than the image
			want := ConfigDriveReport{}
			if tc.configDrive {
				want = ConfigDriveReport{Found: true, Hostname: "node-" + tc.firmware, UUID: "8e4a6b8c-2f7e-4d3b-9a61-5c0f1e2d3b4a",
					Keys: []string{"alice", "bob"}, UserDataBytes: 21, NetworkData: true}
				iso := configDriveISO(t, want)
				if _, err := agent.WriteConfigDrive(t.Context(), disk, iso); err != nil {
					t.Fatal(err)
				}
			}
			firmware, rep, took := boot(t, disk, tc.firmware == FirmwareUEFI)
			t.Logf("%s: power-on to config drive line %v", tc.name, took.Round(100*time.Millisecond))
			if firmware != tc.firmware {
				t.Errorf("firmware=%s, want %s", firmware, tc.firmware)
			}
			if rep.Found != want.Found || rep.Hostname != want.Hostname || rep.UUID != want.UUID ||
				!slices.Equal(rep.Keys, want.Keys) || rep.UserDataBytes != want.UserDataBytes || rep.NetworkData != want.NetworkData {
				t.Errorf("config drive report %+v, want %+v", rep, want)
			}
		})
	}
}

func copyImage(t *testing.T, src, dst string, size int64) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(dst, size); err != nil {
		t.Fatal(err)
	}
}

// configDriveISO makes a Rock Ridge config-2 ISO with xorriso, as a deploy's config drive.
func configDriveISO(t *testing.T, r ConfigDriveReport) []byte {
	t.Helper()
	root := filepath.Join(t.TempDir(), "cd")
	latest := filepath.Join(root, "openstack/latest")
	if err := os.MkdirAll(latest, 0o755); err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, k := range r.Keys {
		keys[k] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + k + " " + k + "@example"
	}
	md, err := json.Marshal(map[string]any{"hostname": r.Hostname, "uuid": r.UUID, "public_keys": keys, "name": r.Hostname})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"meta_data.json": md, "network_data.json": []byte(`{"links":[],"networks":[],"services":[]}`),
		"user_data": []byte(strings.Repeat("u", int(r.UserDataBytes)))}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(latest, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	iso := filepath.Join(t.TempDir(), "config-2.iso")
	if out, err := exec.Command("xorriso", "-as", "mkisofs", "-quiet", "-R", "-V", "config-2", "-o", iso, root).CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v: %s", err, out)
	}
	b, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// boot runs disk in QEMU (TCG, virtio disk, no network) until the image has printed both
// report lines, then stops QEMU. It returns the firmware and config drive reports and the
// time from starting QEMU to the second line.
func boot(t *testing.T, disk string, uefi bool) (string, ConfigDriveReport, time.Duration) {
	t.Helper()
	dir := t.TempDir()
	serial := filepath.Join(dir, "serial.log")
	args := []string{"-accel", "tcg", "-m", "512", "-display", "none", "-no-user-config", "-nodefaults",
		"-drive", "file=" + disk + ",if=virtio,format=raw", "-serial", "file:" + serial,
		"-device", "virtio-rng-pci", "-nic", "none"}
	if uefi {
		vars := filepath.Join(dir, "OVMF_VARS.fd")
		b, err := os.ReadFile(ovmfVars)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vars, b, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-machine", "q35",
			"-drive", "if=pflash,format=raw,readonly=on,file="+ovmfCode,
			"-drive", "if=pflash,format=raw,file="+vars)
	}
	ctx, cancel := context.WithTimeout(t.Context(), bootWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cancel() // kills QEMU
		<-exited
	}()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("QEMU exited before the image reported: %v: %s\nserial:\n%s", err, stderr.String(), tail(serial))
		case <-ctx.Done():
			t.Fatalf("no %s line within %v; serial:\n%s", ConfigDriveMarker, bootWait, tail(serial))
		case <-tick.C:
		}
		b, _ := os.ReadFile(serial)
		b = b[:bytes.LastIndexByte(b, '\n')+1] // whole lines only
		var firmware string
		var seenFirmware bool
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			line := sc.Text()
			if f, ok := ParseBootedLine(line); ok {
				firmware, seenFirmware = f, true
			}
			if strings.Contains(line, ConfigDriveMarker+" ") && seenFirmware {
				rep, err := ParseConfigDriveLine(line)
				if err != nil {
					t.Fatal(err)
				}
				return firmware, rep, time.Since(start)
			}
		}
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
