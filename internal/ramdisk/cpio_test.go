package ramdisk

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestCPIOReadByGNUCpio writes an archive and unpacks it with GNU cpio, an independent reader.
func TestCPIOReadByGNUCpio(t *testing.T) {
	cpio, err := exec.LookPath("cpio")
	if err != nil {
		t.Skip("GNU cpio is not installed (Debian package cpio)")
	}
	var buf bytes.Buffer
	w := NewCPIO(&buf)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.File("init", 0o755, []byte("#!/bin/sh\necho hi\n")))
	must(w.File("etc/deep/config", 0o644, []byte("x")))
	must(w.File("empty", 0o600, nil))
	must(w.Symlink("bin/sh", "/init"))
	must(w.Close())
	again := new(bytes.Buffer)
	w2 := NewCPIO(again)
	_ = w2.File("init", 0o755, []byte("#!/bin/sh\necho hi\n"))
	_ = w2.File("etc/deep/config", 0o644, []byte("x"))
	_ = w2.File("empty", 0o600, nil)
	_ = w2.Symlink("bin/sh", "/init")
	_ = w2.Close()
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Fatal("the same entries gave different archives")
	}
	dir := t.TempDir()
	cmd := exec.Command(cpio, "-i", "-d", "--quiet")
	cmd.Dir = dir
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v: %s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "init"))
	if err != nil || string(b) != "#!/bin/sh\necho hi\n" {
		t.Fatalf("init: %q %v", b, err)
	}
	if st, _ := os.Stat(filepath.Join(dir, "init")); st.Mode().Perm() != 0o755 {
		t.Fatalf("init mode %v", st.Mode())
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "etc/deep/config")); string(b) != "x" {
		t.Fatalf("nested file: %q", b)
	}
	if l, err := os.Readlink(filepath.Join(dir, "bin/sh")); err != nil || l != "/init" {
		t.Fatalf("symlink: %q %v", l, err)
	}
	if st, err := os.Stat(filepath.Join(dir, "empty")); err != nil || st.Size() != 0 {
		t.Fatalf("empty file: %v %v", st, err)
	}
}
