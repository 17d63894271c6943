package vmedia

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/internal/ramdisk"
)

func testKernel(t *testing.T) []byte {
	t.Helper()
	p := os.Getenv("IRONWORK_TEST_KERNEL")
	if p == "" {
		t.Skip("IRONWORK_TEST_KERNEL is not set (scripts/kernel.sh unpacks a Debian kernel)")
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loaders(t *testing.T) Loaders {
	t.Helper()
	start := time.Now()
	l, err := LoadLoaders(context.Background(), t.TempDir())
	if errors.Is(err, ErrMissingTools) {
		t.Fatalf("%v (scripts/deps.sh installs them)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("boot loaders made in %s: BIOS %d bytes, ESP %d bytes", time.Since(start).Round(time.Millisecond), len(l.BIOS), len(l.EFI))
	return l
}

// TestISOBootsUnderSeaBIOSAndOVMF boots a boot ISO as a QEMU CD under both firmwares and
// reads the serial console: GRUB must find the ISO, start the kernel with the parameters
// given (the kernel prints its command line) and hand it the ramdisk (the kernel unpacks
// it and tries its /init). That /init is not a program: the kernel panic after it is
// expected and ends QEMU (-no-reboot, panic=-1).
func TestISOBootsUnderSeaBIOSAndOVMF(t *testing.T) {
	kernel := testKernel(t)
	l := loaders(t)
	var rd bytes.Buffer
	c := ramdisk.NewCPIO(&rd)
	// An initramfs whose /init is not executable: the kernel says it cannot run it, which
	// shows the ramdisk arrived (and its name); nothing needs building.
	if err := c.File("init", 0o644, []byte("not a program\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	const marker = "ironwork-vmedia-test=1"
	iso, err := ISO(Boot{Kernel: kernel, Ramdisk: rd.Bytes(), Params: []string{"console=ttyS0", "panic=-1", marker,
		"ipa-api-url=http://10.9.0.1:6385"}, NetworkData: map[string]any{"links": []any{}}}, l)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "boot.iso")
	if err := os.WriteFile(p, iso, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("boot ISO: %d bytes", len(iso))

	for _, fw := range []string{"bios", "uefi"} {
		t.Run(fw, func(t *testing.T) {
			args := []string{"-nodefaults", "-nographic", "-m", "512", "-no-reboot", "-serial", "stdio",
				"-drive", "media=cdrom,readonly=on,if=ide,file=" + p, "-boot", "d"}
			if fw == "uefi" {
				vars := filepath.Join(t.TempDir(), "vars.fd")
				b, err := os.ReadFile("/usr/share/OVMF/OVMF_VARS_4M.fd")
				if err != nil {
					t.Fatalf("OVMF (scripts/deps.sh installs ovmf): %v", err)
				}
				os.WriteFile(vars, b, 0o644)
				args = append([]string{"-machine", "q35", "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
					"-drive", "if=pflash,format=raw,unit=1,file=" + vars}, args...)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cancel(); cmd.Wait() }()
			var seen []string
			want := map[string]time.Duration{}
			steps := []string{"Ironwork: booting the deploy ramdisk from virtual media", "Command line:", "Run /init as init process"}
			sc := bufio.NewScanner(out)
			for sc.Scan() && len(want) < len(steps) {
				line := sc.Text()
				seen = append(seen, line)
				for _, s := range steps {
					if _, ok := want[s]; !ok && strings.Contains(line, s) {
						if s == "Command line:" && !strings.Contains(line, marker) {
							t.Fatalf("the kernel's command line lacks %s: %s", marker, line)
						}
						want[s] = time.Since(start)
					}
				}
			}
			if len(want) < len(steps) {
				tail := seen
				if len(tail) > 60 {
					tail = tail[len(tail)-60:]
				}
				t.Fatalf("%s boot stopped after %s; saw %v of %v; console:\n%s", fw, time.Since(start).Round(time.Second), want, steps, strings.Join(tail, "\n"))
			}
			t.Logf("%s: GRUB at %s, kernel at %s, ramdisk's /init at %s", fw, want[steps[0]].Round(time.Millisecond),
				want[steps[1]].Round(time.Millisecond), want[steps[2]].Round(time.Millisecond))
		})
	}
}

func TestISORefusesBadInput(t *testing.T) {
	l := Loaders{BIOS: []byte{1}, EFI: []byte{2}}
	for name, b := range map[string]Boot{
		"no kernel":      {Ramdisk: []byte{1}},
		"space in param": {Kernel: []byte{1}, Ramdisk: []byte{1}, Params: []string{"a b"}},
		"quote in param": {Kernel: []byte{1}, Ramdisk: []byte{1}, Params: []string{"a='; reboot; '"}},
		"line break":     {Kernel: []byte{1}, Ramdisk: []byte{1}, Params: []string{"a\nreboot"}},
	} {
		if _, err := ISO(b, l); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ISO(Boot{Kernel: []byte{1}, Ramdisk: []byte{1}}, Loaders{}); err == nil {
		t.Error("no loaders: accepted")
	}
}
