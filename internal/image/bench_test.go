package image

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchmarkFetchCached is the hit path: lstat, atime bump, no network.
func BenchmarkFetchCached(b *testing.B) {
	local := filepath.Join(b.TempDir(), "kernel")
	img := randomBytes(1<<20, 60)
	os.WriteFile(local, img, 0o644)
	c, err := New(Config{Dir: b.TempDir()}, nil)
	if err != nil {
		b.Fatal(err)
	}
	src := Source{URL: "file://" + local, Checksum: "sha256:" + sha256Hex(img)}
	ctx := context.Background()
	if _, err := c.Fetch(ctx, src); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Fetch(ctx, src); err != nil {
			b.Fatal(err)
		}
	}
}

const benchImageSize = 256 << 20

// bigImageServer serves a 256 MiB file with Go's file server (sendfile)
// on loopback and returns its URL and sha256.
func bigImageServer(b *testing.B) (string, string) {
	b.Helper()
	dir := b.TempDir()
	block := randomBytes(1<<20, 61)
	f, err := os.Create(filepath.Join(dir, "disk.raw"))
	if err != nil {
		b.Fatal(err)
	}
	for range benchImageSize / len(block) {
		f.Write(block)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	sum, err := exec.Command("sha256sum", f.Name()).Output()
	if err != nil {
		b.Skip("needs sha256sum (coreutils)")
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	b.Cleanup(srv.Close)
	return srv.URL + "/disk.raw", string(sum[:64])
}

// BenchmarkFetchHTTP256MiB: a cold Fetch (GET, sha256 while writing, fsync,
// rename) of 256 MiB from a loopback server. MB/s is the figure to read.
func BenchmarkFetchHTTP256MiB(b *testing.B) {
	u, sum := bigImageServer(b)
	dir := b.TempDir()
	b.SetBytes(benchImageSize)
	for b.Loop() {
		c, err := New(Config{Dir: filepath.Join(dir, "c")}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Fetch(context.Background(), Source{URL: u, Checksum: "sha256:" + sum}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.RemoveAll(filepath.Join(dir, "c"))
		b.StartTimer()
	}
}

// BenchmarkCurl256MiB: Debian's curl -o of the same file from the same
// server (no hashing, no fsync).
func BenchmarkCurl256MiB(b *testing.B) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		b.Skip("needs curl (Debian package curl)")
	}
	u, _ := bigImageServer(b)
	out := filepath.Join(b.TempDir(), "disk.raw")
	b.SetBytes(benchImageSize)
	for b.Loop() {
		if msg, err := exec.Command(curl, "-sSf", "-o", out, u).CombinedOutput(); err != nil {
			b.Fatalf("curl: %v: %s", err, msg)
		}
		b.StopTimer()
		os.Remove(out)
		b.StartTimer()
	}
}

// BenchmarkCurlSha256sumSync256MiB: curl, then sha256sum and sync of the
// file: the same work as Fetch, done by Debian's tools one after another.
func BenchmarkCurlSha256sumSync256MiB(b *testing.B) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		b.Skip("needs curl (Debian package curl)")
	}
	u, sum := bigImageServer(b)
	out := filepath.Join(b.TempDir(), "disk.raw")
	b.SetBytes(benchImageSize)
	for b.Loop() {
		if msg, err := exec.Command(curl, "-sSf", "-o", out, u).CombinedOutput(); err != nil {
			b.Fatalf("curl: %v: %s", err, msg)
		}
		got, err := exec.Command("sha256sum", out).Output()
		if err != nil || string(got[:64]) != sum {
			b.Fatalf("sha256sum: %v %q", err, got)
		}
		if err := exec.Command("sync", out).Run(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.Remove(out)
		b.StartTimer()
	}
}
