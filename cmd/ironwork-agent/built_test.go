package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ironwork/ironwork/internal/ramdisk"
)

// TestMain removes what the tests built once for the run (buildAgent, builtRamdisk).
func TestMain(m *testing.M) {
	code := m.Run()
	built.mu.Lock()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	built.mu.Unlock()
	os.Exit(code)
}

// built holds the agent binary and the deploy ramdisks this test binary built, so that each
// is built once per run rather than once per test: 'go build' caches the compile but not the
// link, and a ramdisk is 14 MB of gzip.
var built struct {
	mu       sync.Mutex
	dir      string
	agent    string
	ramdisks map[string]ramdisk.BuildResult // by kernel directory
}

// builtDir returns the run's directory for built files. built.mu must be held.
func builtDir(t *testing.T) string {
	t.Helper()
	if built.dir == "" {
		dir, err := os.MkdirTemp("", "ironwork-agent-test-")
		if err != nil {
			t.Fatal(err)
		}
		built.dir = dir
	}
	return built.dir
}

// buildAgent returns this package's binary, built with CGO_ENABLED=0 (as the ramdisk holds
// it) once for the run. Tests must not change the file.
func buildAgent(t *testing.T) string {
	t.Helper()
	built.mu.Lock()
	defer built.mu.Unlock()
	return buildAgentLocked(t)
}

func buildAgentLocked(t *testing.T) string {
	t.Helper()
	if built.agent != "" {
		return built.agent
	}
	bin := filepath.Join(builtDir(t), "ironwork-agent")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	built.agent = bin
	return bin
}

// builtRamdisk returns the deploy ramdisk of kernelDir's kernel with this package's agent,
// built once for the run. Tests must not change its files.
func builtRamdisk(t *testing.T, kernelDir string) ramdisk.BuildResult {
	t.Helper()
	built.mu.Lock()
	defer built.mu.Unlock()
	if res, ok := built.ramdisks[kernelDir]; ok {
		return res
	}
	bin := buildAgentLocked(t)
	out := filepath.Join(builtDir(t), "ramdisk-"+filepath.Base(kernelDir))
	res, err := ramdisk.Build(context.Background(), ramdisk.BuildConfig{KernelDir: kernelDir, Agent: bin, Output: out})
	if err != nil {
		t.Fatalf("ramdisk build: %v", err)
	}
	if built.ramdisks == nil {
		built.ramdisks = map[string]ramdisk.BuildResult{}
	}
	built.ramdisks[kernelDir] = res
	return res
}
