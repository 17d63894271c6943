package image

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// staleTemp is the age (by mtime, which every write bumps) after which a
// temp file of no running download is removed.
const staleTemp = time.Hour

// isKey reports whether name is a master file name (64 lower-case hex).
func isKey(name string) bool {
	if len(name) != 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if b := name[i]; (b < '0' || b > '9') && (b < 'a' || b > 'f') {
			return false
		}
	}
	return true
}

// masterInfo is what Clean knows of one master.
type masterInfo struct {
	key     string
	size    int64
	nlink   uint64
	lastUse time.Time // max(atime, mtime)
}

// statMaster lstats a master; ok is false for anything but a regular file
// (a symlink planted in Dir is never followed).
func statMaster(p string) (masterInfo, bool) {
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return masterInfo{}, false
	}
	m := masterInfo{key: filepath.Base(p), size: fi.Size(), nlink: 1, lastUse: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		m.nlink = uint64(st.Nlink)
		if at := time.Unix(st.Atim.Sec, st.Atim.Nsec); at.After(m.lastUse) {
			m.lastUse = at
		}
	}
	return m, true
}

// Size is the total size in bytes of the masters, in use or not.
func (c *Cache) Size() (int64, error) {
	masters, err := c.masters()
	if err != nil {
		return 0, err
	}
	var total int64
	for _, m := range masters {
		total += m.size
	}
	return total, nil
}

func (c *Cache) masters() ([]masterInfo, error) {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, fmt.Errorf("list image cache: %w", err)
	}
	var out []masterInfo
	for _, e := range entries {
		if !isKey(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		if m, ok := statMaster(filepath.Join(c.dir, e.Name())); ok {
			out = append(out, m)
		}
	}
	return out, nil
}

// Clean removes masters unused for MaxAge, then the least recently used
// ones until the cache is within MaxSize. It never removes a master with
// more than one link (a node holds it) or one a running Fetch is
// revalidating. It also removes temp files older than an hour that no
// running download owns, and metadata without a master.
func (c *Cache) Clean(ctx context.Context) (removed int, freed int64, err error) {
	return c.clean(ctx, 0)
}

// clean is Clean that also makes room for need more bytes.
func (c *Cache) clean(ctx context.Context, need int64) (removed int, freed int64, err error) {
	c.cleanMu.Lock()
	defer c.cleanMu.Unlock()

	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return 0, 0, fmt.Errorf("clean image cache: %w", err)
	}
	now := c.cfg.Now()
	var (
		total      int64
		candidates []masterInfo
		metas      []string
	)
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, tmpPrefix):
			c.removeStaleTemp(name, now)
		case strings.HasSuffix(name, metaSuffix):
			metas = append(metas, name)
		case isKey(name):
			m, ok := statMaster(filepath.Join(c.dir, name))
			if !ok {
				continue
			}
			total += m.size
			if m.nlink > 1 || c.active(name) {
				continue
			}
			candidates = append(candidates, m)
		}
	}

	remove := func(m masterInfo, why string) {
		if err := os.Remove(c.masterPath(m.key)); err != nil {
			c.log.Warn("remove master image", keyPath, c.masterPath(m.key), keyErr, err)
			return
		}
		os.Remove(c.metaPath(m.key))
		removed++
		freed += m.size
		total -= m.size
		c.log.Debug("removed master image", keyPath, c.masterPath(m.key), keyBytes, m.size, "reason", why)
	}

	// Stage 1: expire by age.
	var survivors []masterInfo
	for _, m := range candidates {
		if err := ctx.Err(); err != nil {
			return removed, freed, fmt.Errorf("clean image cache: %w", err)
		}
		if now.Sub(m.lastUse) > c.cfg.MaxAge {
			remove(m, "expired")
			continue
		}
		survivors = append(survivors, m)
	}
	// Stage 2: least recently used first, until within MaxSize.
	sort.Slice(survivors, func(i, j int) bool { return survivors[i].lastUse.Before(survivors[j].lastUse) })
	for _, m := range survivors {
		if total+need <= c.cfg.MaxSize {
			break
		}
		if err := ctx.Err(); err != nil {
			return removed, freed, fmt.Errorf("clean image cache: %w", err)
		}
		remove(m, "size")
	}

	for _, name := range metas {
		key := strings.TrimSuffix(name, metaSuffix)
		if !isKey(key) {
			continue
		}
		if _, err := os.Lstat(c.masterPath(key)); os.IsNotExist(err) && !c.active(key) {
			os.Remove(filepath.Join(c.dir, name))
		}
	}
	if removed > 0 {
		c.log.Info("image cache cleaned", keyRemoved, removed, keyFreed, freed, keySize, total, keyMax, c.cfg.MaxSize)
	}
	if total+need > c.cfg.MaxSize {
		c.log.Info("image cache over its maximum size after clean: the rest is in use or recent",
			keySize, total, keyMax, c.cfg.MaxSize)
	}
	return removed, freed, nil
}

// removeStaleTemp removes Dir/name if it is an old temp file of no running
// download. Temp names are ".tmp-" + the first 16 hex of the key + "-...".
func (c *Cache) removeStaleTemp(name string, now time.Time) {
	p := filepath.Join(c.dir, name)
	fi, err := os.Lstat(p)
	if err != nil || fi.IsDir() || now.Sub(fi.ModTime()) < staleTemp {
		return
	}
	prefix := strings.TrimPrefix(name, tmpPrefix)
	if len(prefix) >= 16 && c.activePrefix(prefix[:16]) {
		return
	}
	if err := os.Remove(p); err != nil {
		c.log.Warn("remove stale temp file", keyPath, p, keyErr, err)
		return
	}
	c.log.Info("removed stale temp file", keyPath, p)
}

func (c *Cache) activePrefix(prefix string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.flights {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}
