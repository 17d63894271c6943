package image

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLinkHardLinks(t *testing.T) {
	srv := newImageServer(t)
	img := randomBytes(4096, 20)
	src := Source{URL: srv.put("/deploy.kernel", img, time.Now()), Checksum: "sha256:" + sha256Hex(img)}
	c, _ := newTestCache(t, Config{Dir: filepath.Join(t.TempDir(), "master")})
	ctx := context.Background()
	dest := filepath.Join(filepath.Dir(c.Dir()), "tftp", "node-1", "deploy_kernel")

	if err := c.Link(ctx, src, dest); err != nil {
		t.Fatal(err)
	}
	master, err := c.Fetch(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	ms, ds := statT(t, master), statT(t, dest)
	if ms.Ino != ds.Ino || ms.Nlink != 2 {
		t.Fatalf("master ino %d nlink %d, dest ino %d: want one inode with 2 links", ms.Ino, ms.Nlink, ds.Ino)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, img) {
		t.Fatal("dest content differs")
	}

	// Linking again is a no-op; a second node gets a third link.
	if err := c.Link(ctx, src, dest); err != nil {
		t.Fatal(err)
	}
	if err := c.Link(ctx, src, filepath.Join(filepath.Dir(dest), "..", "node-2", "deploy_kernel")); err != nil {
		t.Fatal(err)
	}
	if n := statT(t, master).Nlink; n != 3 {
		t.Fatalf("nlink %d, want 3", n)
	}
	if n := srv.count("GET /deploy.kernel"); n != 1 {
		t.Errorf("server saw %d GETs, want 1", n)
	}

	// A stale dest (another image) is replaced atomically.
	other := randomBytes(10, 21)
	src2 := Source{URL: srv.put("/other", other, time.Now()), Checksum: sha256Hex(other)}
	if err := c.Link(ctx, src2, dest); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, other) {
		t.Fatal("dest not replaced")
	}
	if n := statT(t, master).Nlink; n != 2 {
		t.Fatalf("old master nlink %d after replacing dest, want 2", n)
	}
	entries, _ := os.ReadDir(filepath.Dir(dest))
	for _, e := range entries {
		if strings.Contains(e.Name(), tmpPrefix) {
			t.Errorf("temp file %s left next to dest", e.Name())
		}
	}
}

// TestLinkAcrossFilesystems needs a directory on another filesystem than
// the test's temp dir; /dev/shm (tmpfs) usually is one.
func TestLinkAcrossFilesystems(t *testing.T) {
	c, logs := newTestCache(t, Config{})
	shm := "/dev/shm"
	if fi, err := os.Stat(shm); err != nil || !fi.IsDir() {
		t.Skip("no /dev/shm to link across filesystems")
	}
	if statT(t, shm).Dev == statT(t, c.Dir()).Dev {
		t.Skip("/dev/shm is on the same filesystem as the temp dir")
	}
	destDir := filepath.Join(shm, fmt.Sprintf("ironwork-image-test-%d", os.Getpid()))
	t.Cleanup(func() { os.RemoveAll(destDir) })
	local := filepath.Join(t.TempDir(), "ramdisk")
	img := randomBytes(100<<10, 22)
	os.WriteFile(local, img, 0o644)
	dest := filepath.Join(destDir, "n1", "ramdisk")
	if err := c.Link(context.Background(), Source{URL: local, Checksum: sha256Hex(img)}, dest); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, img) {
		t.Fatal("copied dest content differs")
	}
	if !strings.Contains(logs.String(), "copying the master image instead") {
		t.Errorf("no log line about the copy fallback in %q", logs.String())
	}
	if fi, _ := os.Stat(dest); fi.Mode().Perm() != 0o644 {
		t.Errorf("copy mode %v, want 0644", fi.Mode().Perm())
	}
}
