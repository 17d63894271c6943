package lab_test

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// The lab tests run two at a time (t.Parallel; scripts/test.sh passes -parallel 2) and share,
// per test process, what every lab needs built: the ironwork and ironwork-agent binaries
// (labBinaries) and the deploy ramdisk and test image (lab.Options.Cache = labCache()).

// TestMain removes what the lab tests shared once they have all run.
func TestMain(m *testing.M) {
	code := m.Run()
	if err := os.RemoveAll(sharedDir()); err != nil {
		fmt.Fprintf(os.Stderr, "remove the lab tests' shared directory: %v\n", err)
	}
	os.Exit(code)
}

// sharedDir holds what the lab tests of this process share.
func sharedDir() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("ironwork-labtests-%d", os.Getpid()))
}

// labCache is the lab.Options.Cache of every lab test: the deploy ramdisk and the test image
// are built once per test process.
func labCache() string { return filepath.Join(sharedDir(), "cache") }

// labBinaries builds ironwork and ironwork-agent once per test process (under a lock, as
// parallel tests ask at once) and returns their paths.
func labBinaries(t testing.TB) (ironwork, agent string) {
	t.Helper()
	dir := filepath.Join(sharedDir(), "bin")
	ironwork, agent = filepath.Join(dir, "ironwork"), filepath.Join(dir, "ironwork-agent")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("lock %s: %v", dir, err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	for _, b := range []struct{ out, pkg string }{{ironwork, "../../cmd/ironwork"}, {agent, "../../cmd/ironwork-agent"}} {
		if _, err := os.Stat(b.out); err == nil {
			continue
		}
		goBuild(t, b.out+".tmp", b.pkg)
		if err := os.Rename(b.out+".tmp", b.out); err != nil {
			t.Fatal(err)
		}
	}
	return ironwork, agent
}
