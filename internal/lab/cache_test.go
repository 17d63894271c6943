package lab

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Labs coming up at once with one cache build what is missing once: withCacheLock lets one in
// at a time, across goroutines here as across the processes of parallel tests (flock).
func TestCacheLockBuildsOnce(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "cache")
	artefact := filepath.Join(cache, "built")
	var builds atomic.Int32
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			errs[i] = withCacheLock(cache, func() error {
				if exists(artefact) {
					return nil
				}
				// Widen the window between the check and the build: without the lock,
				// several would build.
				time.Sleep(100 * time.Millisecond)
				builds.Add(1)
				return os.WriteFile(artefact, []byte("x"), 0o644)
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("lab %d: %v", i, err)
		}
	}
	if n := builds.Load(); n != 1 {
		t.Errorf("built %d times, want once", n)
	}
	// A cache with no ramdisk in it and no agent to build one says so, before building.
	opts := Options{KernelDir: "/nonexistent", Cache: filepath.Join(t.TempDir(), "empty"), Log: &strings.Builder{}}
	if err := cachedRamdisk(context.Background(), opts, t.TempDir()); err == nil || !strings.Contains(err.Error(), "no ironwork-agent") {
		t.Errorf("an empty cache without an agent: %v, want an error naming the missing agent", err)
	}
}
