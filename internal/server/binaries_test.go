package server_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// TestMain removes the binaries the tests built (builtBinary) after the run.
func TestMain(m *testing.M) {
	code := m.Run()
	binaries.mu.Lock()
	if binaries.dir != "" {
		os.RemoveAll(binaries.dir)
	}
	binaries.mu.Unlock()
	os.Exit(code)
}

// binaries holds the commands this test binary built, by package, so that each is built
// (and linked, which 'go build' does not cache) once per run rather than once per test.
var binaries struct {
	mu    sync.Mutex
	dir   string
	built map[string]string
}

// builtBinary returns the path of the command pkg (relative to this directory), built with
// CGO_ENABLED=0 once for the whole run. Tests must not change the file.
func builtBinary(t *testing.T, pkg string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is needed to build " + pkg)
	}
	binaries.mu.Lock()
	defer binaries.mu.Unlock()
	if bin, ok := binaries.built[pkg]; ok {
		return bin
	}
	if binaries.dir == "" {
		if binaries.dir, err = os.MkdirTemp("", "ironwork-server-test-bin-"); err != nil {
			t.Fatal(err)
		}
		binaries.built = map[string]string{}
	}
	bin := filepath.Join(binaries.dir, fmt.Sprintf("%d-%s", len(binaries.built), filepath.Base(pkg)))
	cmd := exec.Command(goBin, "build", "-o", bin, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v: %s", pkg, err, out)
	}
	binaries.built[pkg] = bin
	return bin
}
