package agent

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The image fixtures are built once per test binary (qemu-img, sgdisk,
// compressors) and shared read-only by the tests.
var (
	fixtureOnce sync.Once
	fixtureImgs *images
	fixtureErr  error
	fixtureDir  string
)

func TestMain(m *testing.M) {
	if os.Getenv(rssChildEnv) != "" {
		os.Exit(rssChild())
	}
	code := m.Run()
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	if benchImgs != nil {
		os.RemoveAll(benchImgs.dir)
	}
	os.Exit(code)
}

// images are one GPT disk image in every format the agent writes.
type images struct {
	dir    string
	size   int64
	raw    string // source raw image
	ref    string // qemu-img convert -O raw of the qcow2
	qcow2  string
	qcow2c string // qemu-img convert -c
	gz     string
	zst    string
	xz     string
	dos    string // an MBR-partitioned raw image
	sums   map[string]string
}

const fixtureSize = 64 << 20

func requireTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian packages: qemu-utils gdisk fdisk zstd xz-utils xorriso)", tool)
		}
	}
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := runErr(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func runErr(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return "", err
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return buf.String(), err
	case <-time.After(5 * time.Minute):
		cmd.Process.Kill()
		<-done
		return buf.String(), fmt.Errorf("%s timed out", name)
	}
}

func fixture(t testing.TB) *images {
	t.Helper()
	requireTools(t, "qemu-img", "sgdisk", "sfdisk", "gzip", "zstd", "xz")
	fixtureOnce.Do(func() {
		dir, err := os.MkdirTemp("", "agent-images-")
		if err != nil {
			fixtureErr = err
			return
		}
		fixtureDir = dir
		fixtureImgs, fixtureErr = buildImages(dir, fixtureSize)
	})
	if fixtureErr != nil {
		t.Fatalf("build image fixtures: %v", fixtureErr)
	}
	return fixtureImgs
}

// buildImages makes a GPT raw image with three partitions holding random
// data in places (and holes elsewhere), plus its qcow2, compressed-qcow2,
// gzip, zstd and xz forms.
func buildImages(dir string, size int64) (*images, error) {
	im := &images{dir: dir, size: size, sums: map[string]string{}}
	p := func(n string) string { return filepath.Join(dir, n) }
	im.raw, im.ref, im.qcow2, im.qcow2c = p("disk.raw"), p("ref.raw"), p("disk.qcow2"), p("disk-c.qcow2")
	im.gz, im.zst, im.xz, im.dos = p("disk.raw.gz"), p("disk.raw.zst"), p("disk.raw.xz"), p("dos.raw")
	steps := [][]string{
		{"truncate", "-s", fmt.Sprint(size), im.raw},
		{"sgdisk", "-n", "1:2048:+8M", "-t", "1:ef00", "-c", "1:esp", "-n", "2:0:+20M", "-c", "2:root", "-n", "3:0:0", "-c", "3:data", im.raw},
	}
	for _, s := range steps {
		if out, err := runErr(s[0], s[1:]...); err != nil {
			return nil, fmt.Errorf("%v: %w: %s", s, err, out)
		}
	}
	mib := int64(1 << 20)
	if err := scribble(im.raw, 1, [][2]int64{
		{600 << 10, 64 << 10}, // "boot loader" inside the first MiB
		{1 * mib, 3 * mib}, {6 * mib, 1 * mib}, {12 * mib, 2 * mib}, {20 * mib, 512 << 10},
		{30 * mib, 4 * mib}, {45 * mib, 1 * mib}, {size - 3*mib, 1 * mib},
	}); err != nil {
		return nil, err
	}
	steps = [][]string{
		{"qemu-img", "convert", "-f", "raw", "-O", "qcow2", im.raw, im.qcow2},
		{"qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", im.raw, im.qcow2c},
		{"qemu-img", "convert", "-f", "qcow2", "-O", "raw", im.qcow2, im.ref},
		{"sh", "-c", fmt.Sprintf("gzip -1 -c %s > %s", im.raw, im.gz)},
		{"sh", "-c", fmt.Sprintf("zstd -q -1 -c %s > %s", im.raw, im.zst)},
		{"sh", "-c", fmt.Sprintf("xz -0 -T1 -c %s > %s", im.raw, im.xz)},
		{"truncate", "-s", fmt.Sprint(size), im.dos},
		{"sh", "-c", fmt.Sprintf("printf 'label: dos\nlabel-id: 0x1234abcd\n2048,16384,83\n,32768,83\n' | sfdisk -q %s", im.dos)},
	}
	for _, s := range steps {
		if out, err := runErr(s[0], s[1:]...); err != nil {
			return nil, fmt.Errorf("%v: %w: %s", s, err, out)
		}
	}
	if err := scribble(im.dos, 2, [][2]int64{{2 * mib, 2 * mib}, {10 * mib, 1 * mib}}); err != nil {
		return nil, err
	}
	for _, f := range []string{im.raw, im.qcow2, im.qcow2c, im.gz, im.zst, im.xz, im.dos} {
		sum, err := sha256File(f)
		if err != nil {
			return nil, err
		}
		im.sums[f] = sum
	}
	return im, nil
}

// scribble writes deterministic random bytes at the given (offset, length)
// ranges of a file.
func scribble(path string, seed uint64, ranges [][2]int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	rng := rand.New(rand.NewChaCha8([32]byte{byte(seed)}))
	for _, r := range ranges {
		b := make([]byte, r[1])
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if _, err := f.WriteAt(b, r[0]); err != nil {
			return err
		}
	}
	return nil
}

func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// newTarget makes a target file of size bytes whose first fill bytes hold an
// old "deployment" (0xAB), so unzeroed holes and missing wipes show.
func newTarget(t testing.TB, size, fill int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "target.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	old := bytes.Repeat([]byte{0xab}, 1<<20)
	for off := int64(0); off < min(fill, size); off += int64(len(old)) {
		if _, err := f.WriteAt(old[:min(int64(len(old)), size-off)], off); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// readRange returns n bytes of path (a file or a block device) from off. They are mapped
// read-only, not read into Go's heap: the race detector leaves memory outside the heap alone,
// and reading the tests' 64 to 96 MiB targets into the heap spent most of this package's CPU
// under -race on the detector's shadow memory (perf: page faults under its range checks).
// The mapping ends with the test; the caller must not write to it.
func readRange(t testing.TB, path string, off, n int64) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		t.Fatalf("size of %s: %v", path, err)
	}
	if off < 0 || n < 0 || off+n > size {
		t.Fatalf("read %s at %d: %d bytes asked, %d there", path, off, n, max(size-off, 0))
	}
	if n == 0 {
		return nil
	}
	start := off &^ int64(os.Getpagesize()-1) // a mapping starts on a page
	m, err := unix.Mmap(int(f.Fd()), start, int(off-start+n), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatalf("map %s at %d: %v", path, start, err)
	}
	t.Cleanup(func() { unix.Munmap(m) })
	return m[off-start:]
}

// allBytes reports whether every byte of b is v (bytes.Count is not instrumented per byte
// under -race, as a loop is).
func allBytes(b []byte, v byte) bool {
	return bytes.Count(b, []byte{v}) == len(b)
}

// serveFiles is a real HTTP image server on loopback (Range supported).
func serveFiles(t testing.TB, dir string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv
}

// serveNoRange answers every GET with 200 and the whole file, ignoring Range.
func serveNoRange(t testing.TB, dir string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(filepath.Join(dir, filepath.Base(r.URL.Path)))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		fi, _ := f.Stat()
		w.Header().Set("Content-Length", fmt.Sprint(fi.Size()))
		io.Copy(w, f)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// serveTruncated announces the full length (Range honoured) but stops
// sending at the given fraction of each file and closes the connection.
func serveTruncated(t testing.TB, dir string, fraction float64) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(filepath.Join(dir, filepath.Base(r.URL.Path)))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		fi, _ := f.Stat()
		cut := int64(float64(fi.Size()) * fraction)
		http.ServeContent(w, r, "", time.Time{}, &cutReader{f: f, cut: cut})
	}))
	t.Cleanup(srv.Close)
	return srv
}

type cutReader struct {
	f   *os.File
	pos int64
	cut int64
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.pos >= c.cut {
		return 0, errors.New("cut")
	}
	if int64(len(p)) > c.cut-c.pos {
		p = p[:c.cut-c.pos]
	}
	n, err := c.f.ReadAt(p, c.pos)
	c.pos += int64(n)
	return n, err
}

func (c *cutReader) Seek(off int64, whence int) (int64, error) {
	pos, err := c.f.Seek(off, whence)
	c.pos = pos
	return pos, err
}

// losetup attaches path to a free loop device (root only) and detaches it in
// cleanup.
func losetup(t testing.TB, path string, partscan bool) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loop devices need root")
	}
	requireTools(t, "losetup")
	args := []string{"-f", "--show"}
	if partscan {
		args = append(args, "-P")
	}
	out, err := runErr("losetup", append(args, path)...)
	if err != nil {
		t.Skipf("losetup unavailable here: %v: %s", err, out)
	}
	dev := strings.TrimSpace(out)
	t.Cleanup(func() {
		if out, err := runErr("losetup", "-d", dev); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	return dev
}
