package lab_test

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
)

// The lab tests run two at a time (t.Parallel; scripts/test.sh passes -parallel 2) and share,
// per test process, what every lab needs built: the ironwork and ironwork-agent binaries
// (labBinaries) and the deploy ramdisk and test image (lab.Options.Cache = labCache()).

// TestMain removes what the lab tests shared once they have all run. Told to stop (SIGINT,
// SIGTERM: Ctrl-C, or scripts/test.sh interrupted), it brings down the labs that are up
// first: their servers, BMCs and QEMU machines run in process groups and network namespaces
// of their own and would outlive the test process.
func TestMain(m *testing.M) {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-stop
		downAfterSignal(sig, runningLabs.all())
		os.Exit(1)
	}()
	code := m.Run()
	if err := os.RemoveAll(sharedDir()); err != nil {
		fmt.Fprintf(os.Stderr, "remove the lab tests' shared directory: %v\n", err)
	}
	os.Exit(code)
}

// downAfterSignal brings the labs in dirs down, and removes the shared directory, from a
// process of its own: go test kills the test process (SIGKILL) soon after an interrupt, which
// would cut a lab's Down short (its machines stopped, its namespace left). That process runs
// the lab tests' own ironwork binary's "lab down" in a session of its own, and this one waits
// for it as long as it is let.
func downAfterSignal(sig os.Signal, dirs []string) {
	bin := filepath.Join(sharedDir(), "bin", "ironwork")
	script := ""
	if _, err := os.Stat(bin); err == nil {
		for _, dir := range dirs {
			script += fmt.Sprintf("'%s' lab down --dir '%s'; ", bin, dir)
		}
	}
	script += fmt.Sprintf("rm -rf '%s'", sharedDir())
	// go test may be gone already, and its pipes with it: a write to them must not end this
	// process (Go's default on a broken pipe for standard output and error), and the clean-up
	// process writes nowhere.
	signal.Ignore(syscall.SIGPIPE)
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err := cmd.Start()
	fmt.Fprintf(os.Stderr, "lab tests: %v: bringing %d labs down (%v)\n", sig, len(dirs), err)
	if err == nil {
		cmd.Wait()
	}
}

// runningLabs holds the directories of the labs this test process has up, for TestMain.
var runningLabs = labDirs{dirs: map[string]bool{}}

type labDirs struct {
	mu   sync.Mutex
	dirs map[string]bool
}

// track records a lab's directory from before its lab.Up until the test's clean-ups have run
// (call it before registering the clean-up that brings the lab down).
func (l *labDirs) track(t testing.TB, dir string) {
	l.mu.Lock()
	l.dirs[dir] = true
	l.mu.Unlock()
	t.Cleanup(func() {
		l.mu.Lock()
		delete(l.dirs, dir)
		l.mu.Unlock()
	})
}

func (l *labDirs) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Sorted(maps.Keys(l.dirs))
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
