package tftp

// Tests against the TFTP clients Debian ships: tftp (tftp-hpa), curl and atftp. Each is
// skipped when its binary is missing. The > 65535-block file (32 MiB at 512-byte blocks, which
// rolls the block number over) is skipped with -short.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fixture is a served directory with files of interesting sizes.
type fixture struct {
	dir   string
	files map[string][]byte
}

const bigFile = 512*65536 + 100 // 65537 blocks of 512 bytes

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), files: map[string][]byte{}}
	sizes := map[string]int{"small": 1000, "exact512": 512 * 16, "exact1428": 1428 * 5, "empty": 0}
	if !testing.Short() {
		sizes["big"] = bigFile
	}
	for name, size := range sizes {
		f.files[name] = writeFile(t, f.dir, name, size)
	}
	text := []byte("#!ipxe\nchain http://example.invalid/boot\r\nbare\rcr\n")
	if err := os.WriteFile(filepath.Join(f.dir, "text"), text, 0o644); err != nil {
		t.Fatal(err)
	}
	f.files["text"] = text
	return f
}

func needBinary(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (Debian package %s)", name, map[string]string{"tftp": "tftp-hpa", "curl": "curl", "atftp": "atftp"}[name])
	}
	return p
}

// run runs a client with a deadline and returns its combined output and error.
func run(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// checkFile compares what the client wrote with the source, by SHA-256.
func checkFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("client output: %v", err)
	}
	if sha256.Sum256(got) != sha256.Sum256(want) {
		t.Fatalf("client got %d bytes (sha256 %x), want %d (sha256 %x)", len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
	}
}

// checkServed waits for the server's report of one successful transfer.
func checkServed(t *testing.T, ts *testServer, name string, size int, blksize int) {
	t.Helper()
	info := ts.waitInfo(t, 10*time.Second)
	if info.Err != nil || info.File != name || info.Bytes != int64(size) || (blksize != 0 && info.BlockSize != blksize) {
		t.Fatalf("OnTransfer %+v; want %s, %d bytes, blksize %d, no error", info, name, size, blksize)
	}
}

func TestTftpHpaClient(t *testing.T) {
	bin := needBinary(t, "tftp")
	fx := newFixture(t)
	ts := startServer(t, fx.dir, Config{}, "")
	for _, name := range []string{"small", "exact512", "empty", "big"} {
		want, ok := fx.files[name]
		if !ok {
			continue
		}
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			if msg, err := run(t, bin, "-m", "binary", "127.0.0.1", ts.port(), "-c", "get", name, out); err != nil || msg != "" {
				t.Fatalf("tftp get: %v %s", err, msg)
			}
			checkFile(t, out, want)
			checkServed(t, ts, name, len(want), 512)
		})
	}
	t.Run("ascii", func(t *testing.T) {
		// The client turns netascii back into local text (CR LF -> LF, CR NUL -> CR), so a
		// correct conversion on our side gives the file back byte for byte.
		out := filepath.Join(t.TempDir(), "out")
		if msg, err := run(t, bin, "-m", "ascii", "127.0.0.1", ts.port(), "-c", "get", "text", out); err != nil || msg != "" {
			t.Fatalf("tftp get: %v %s", err, msg)
		}
		checkFile(t, out, fx.files["text"])
		if info := ts.waitInfo(t, 10*time.Second); info.Err != nil || info.Mode != modeNetascii {
			t.Fatalf("OnTransfer %+v", info)
		}
	})
	for _, tt := range []struct{ cmd, name, want string }{
		{"get", "../x", "Error code 2"},
		{"get", "/../../etc/passwd", "Error code 2"},
		{"get", "nope", "Error code 1"},
		{"put", "small", "Error code 2"},
	} {
		t.Run(tt.cmd+" "+tt.name+" refused", func(t *testing.T) {
			local := filepath.Join(t.TempDir(), "local")
			os.WriteFile(local, []byte("upload"), 0o644)
			args := []string{"-m", "binary", "127.0.0.1", ts.port(), "-c", tt.cmd, tt.name, local}
			if tt.cmd == "put" {
				args = []string{"-m", "binary", "127.0.0.1", ts.port(), "-c", "put", local, tt.name}
			}
			msg, _ := run(t, bin, args...) // tftp-hpa exits 0 on a server error
			if !strings.Contains(msg, tt.want) {
				t.Fatalf("tftp %s %s: %q, want %q", tt.cmd, tt.name, msg, tt.want)
			}
			if got, _ := os.ReadFile(local); tt.cmd == "get" && len(got) != 0 {
				t.Fatalf("tftp got %d bytes", len(got))
			}
		})
	}
	if got, _ := os.ReadFile(filepath.Join(fx.dir, "small")); !bytes.Equal(got, fx.files["small"]) {
		t.Fatal("the served file changed")
	}
}

func TestCurlClient(t *testing.T) {
	bin := needBinary(t, "curl")
	fx := newFixture(t)
	ts := startServer(t, fx.dir, Config{}, "")
	url := func(name string) string { return "tftp://127.0.0.1:" + ts.port() + "/" + name }
	tests := []struct {
		name, file string
		args       []string
		blksize    int
	}{
		{"default", "small", nil, 512},
		{"exact multiple", "exact512", nil, 512},
		{"empty", "empty", nil, 512},
		{"blksize 1428", "exact1428", []string{"--tftp-blksize", "1428"}, 1428},
		{"blksize 65464", "small", []string{"--tftp-blksize", "65464"}, 65464},
		{"no options", "exact512", []string{"--tftp-no-options"}, 512},
		{"big blksize 65464", "big", []string{"--tftp-blksize", "65464"}, 65464},
		{"big default (rollover)", "big", nil, 512},
	}
	for _, tt := range tests {
		want, ok := fx.files[tt.file]
		if !ok {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			args := append([]string{"-sS", "--max-time", "120", "-o", out}, tt.args...)
			if msg, err := run(t, bin, append(args, url(tt.file))...); err != nil {
				t.Fatalf("curl: %v %s", err, msg)
			}
			checkFile(t, out, want)
			checkServed(t, ts, tt.file, len(want), tt.blksize)
		})
	}
	t.Run("parallel", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan string, 8)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out := filepath.Join(t.TempDir(), "out")
				if msg, err := run(t, bin, "-sS", "--max-time", "60", "--tftp-blksize", "1024", "-o", out, url("exact1428")); err != nil {
					errs <- msg + err.Error()
					return
				}
				if got, _ := os.ReadFile(out); !bytes.Equal(got, fx.files["exact1428"]) {
					errs <- "client " + string(rune('0'+i)) + " got different bytes"
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	})
	for _, tt := range []struct {
		path string
		exit int // curl: 68 file not found, 69 permission problem
	}{{"nope", 68}, {"../../etc/passwd", 69}, {"%2e%2e/x", 69}} {
		t.Run("refused "+tt.path, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			msg, err := run(t, bin, "-sS", "--path-as-is", "--max-time", "30", "-o", out, url(tt.path))
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != tt.exit {
				t.Fatalf("curl %s: %v %s; want exit %d", tt.path, err, msg, tt.exit)
			}
			if fi, err := os.Stat(out); err == nil && fi.Size() > 0 {
				t.Fatalf("curl wrote %d bytes", fi.Size())
			}
		})
	}
}

func TestAtftpClient(t *testing.T) {
	bin := needBinary(t, "atftp")
	fx := newFixture(t)
	ts := startServer(t, fx.dir, Config{}, "")
	tests := []struct {
		name, file string
		opts       []string
		blksize    int
	}{
		{"blksize 1428", "exact1428", []string{"blksize 1428"}, 1428},
		{"tsize 0", "small", []string{"tsize 0"}, 512},
		{"windowsize 8", "exact512", []string{"windowsize 8"}, 512},
		{"all", "small", []string{"blksize 1428", "tsize 0", "windowsize 8"}, 1428},
		{"empty", "empty", []string{"tsize 0"}, 512},
		{"big windowsize 16 (rollover)", "big", []string{"windowsize 16", "tsize 0"}, 512},
		{"big blksize 8192 windowsize 8", "big", []string{"blksize 8192", "windowsize 8"}, 8192},
	}
	for _, tt := range tests {
		want, ok := fx.files[tt.file]
		if !ok {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			var args []string
			for _, o := range tt.opts {
				args = append(args, "--option", o)
			}
			args = append(args, "-g", "-r", tt.file, "-l", out, "127.0.0.1", ts.port())
			if msg, err := run(t, bin, args...); err != nil {
				t.Fatalf("atftp: %v %s", err, msg)
			}
			checkFile(t, out, want)
			checkServed(t, ts, tt.file, len(want), tt.blksize)
		})
	}
	t.Run("refused ../x", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out")
		msg, err := run(t, bin, "-g", "-r", "../x", "-l", out, "127.0.0.1", ts.port())
		if err == nil || !strings.Contains(msg, "access violation") {
			t.Fatalf("atftp ../x: %v %q; want a failure with \"access violation\"", err, msg)
		}
	})
}
