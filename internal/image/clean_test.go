package image

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// cleanFixture fetches three 1 KiB local images A, B, C into a cache with
// a fake clock, links A to a node dir, and returns their masters.
type cleanFixture struct {
	c       *Cache
	clock   *fakeClock
	srcs    map[string]Source
	masters map[string]string
}

func newCleanFixture(t *testing.T, cfg Config) *cleanFixture {
	t.Helper()
	f := &cleanFixture{clock: newFakeClock(), srcs: map[string]Source{}, masters: map[string]string{}}
	cfg.Now = f.clock.Now
	f.c, _ = newTestCache(t, cfg)
	dir := t.TempDir()
	for i, name := range []string{"A", "B", "C"} {
		b := randomBytes(1024, uint64(30+i))
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		f.srcs[name] = Source{URL: p, Checksum: sha256Hex(b)}
	}
	return f
}

func (f *cleanFixture) fetch(t *testing.T, name string) {
	t.Helper()
	p, err := f.c.Fetch(context.Background(), f.srcs[name])
	if err != nil {
		t.Fatal(err)
	}
	f.masters[name] = p
}

func (f *cleanFixture) present(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, name := range []string{"A", "B", "C"} {
		if p, ok := f.masters[name]; ok {
			if _, err := os.Lstat(p); err == nil {
				names = append(names, name)
			}
		}
	}
	return names
}

func TestCleanByAgeKeepsLinked(t *testing.T) {
	f := newCleanFixture(t, Config{MaxAge: 7 * 24 * time.Hour})
	f.fetch(t, "A")
	f.fetch(t, "B")
	if err := f.c.Link(context.Background(), f.srcs["A"], filepath.Join(t.TempDir(), "node", "kernel")); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(5 * 24 * time.Hour)
	f.fetch(t, "C")
	f.clock.Advance(3 * 24 * time.Hour) // A, B last used 8 days ago, C 3 days ago

	removed, freed, err := f.c.Clean(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if removed != 1 || freed != 1024 {
		t.Errorf("Clean removed %d (%d bytes), want 1 (1024)", removed, freed)
	}
	if got := f.present(t); !slices.Equal(got, []string{"A", "C"}) {
		t.Errorf("masters left %v, want [A C] (A linked, C recent)", got)
	}
	if _, err := os.Lstat(f.masters["B"] + metaSuffix); !os.IsNotExist(err) {
		t.Errorf("B's meta survived: %v", err)
	}
}

func TestCleanBySizeLRU(t *testing.T) {
	f := newCleanFixture(t, Config{MaxSize: 1 << 20})
	ctx := context.Background()
	f.fetch(t, "A")
	if err := f.c.Link(ctx, f.srcs["A"], filepath.Join(t.TempDir(), "node", "ramdisk")); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	f.fetch(t, "B")
	f.clock.Advance(time.Minute)
	f.fetch(t, "C")
	f.clock.Advance(time.Minute)
	f.fetch(t, "B") // a cache hit: B is now more recently used than C
	if size, err := f.c.Size(); err != nil || size != 3072 {
		t.Fatalf("Size() = %d, %v; want 3072", size, err)
	}

	for _, step := range []struct {
		max     int64
		removed int
		left    []string
	}{
		{2048, 1, []string{"A", "B"}}, // C is the least recently used
		{1024, 1, []string{"A"}},      // then B; A is linked and counts
		{1, 0, []string{"A"}},         // a linked master is never removed
	} {
		f.c.cfg.MaxSize = step.max
		removed, freed, err := f.c.Clean(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if removed != step.removed || freed != int64(1024*step.removed) {
			t.Errorf("MaxSize %d: Clean removed %d (%d bytes), want %d", step.max, removed, freed, step.removed)
		}
		if got := f.present(t); !slices.Equal(got, step.left) {
			t.Errorf("MaxSize %d: masters %v, want %v", step.max, got, step.left)
		}
	}
}

func TestCleanTempFilesAndSymlinks(t *testing.T) {
	c, _ := newTestCache(t, Config{MaxSize: 1})
	now := time.Now()
	stale := filepath.Join(c.Dir(), tmpPrefix+"0123456789abcdef-1")
	fresh := filepath.Join(c.Dir(), tmpPrefix+"0123456789abcdef-2")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.Chtimes(stale, now.Add(-2*time.Hour), now.Add(-2*time.Hour))

	// A symlink planted with a master's name must not be followed: its
	// target outside Dir survives and is not counted.
	outside := filepath.Join(t.TempDir(), "precious")
	os.WriteFile(outside, randomBytes(4096, 40), 0o644)
	os.Chtimes(outside, now.Add(-30*24*time.Hour), now.Add(-30*24*time.Hour))
	link := filepath.Join(c.Dir(), hex64)
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	orphanMeta := filepath.Join(c.Dir(), hex64[:63]+"e"+metaSuffix)
	os.WriteFile(orphanMeta, []byte("{}"), 0o644)

	if size, _ := c.Size(); size != 0 {
		t.Errorf("Size() = %d counting a symlink", size)
	}
	if _, _, err := c.Clean(context.Background()); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{stale: false, fresh: true, outside: true, link: true, orphanMeta: false} {
		_, err := os.Lstat(p)
		if got := err == nil; got != want {
			t.Errorf("%s exists = %v, want %v", p, got, want)
		}
	}
}

func TestFetchCleansBeforeDownload(t *testing.T) {
	f := newCleanFixture(t, Config{MaxSize: 1536})
	f.fetch(t, "A")
	f.clock.Advance(time.Minute)
	f.fetch(t, "B") // A+B would be 2048 > 1536: A (unlinked, LRU) goes first
	if got := f.present(t); !slices.Equal(got, []string{"B"}) {
		t.Errorf("masters %v, want [B]", got)
	}
}
