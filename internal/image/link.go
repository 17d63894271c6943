package image

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// errMasterGone means Clean removed a master between Fetch and its link.
var errMasterGone = errors.New("master image removed while linking")

// Link fetches src and hard-links its master to dest, replacing dest
// atomically if it exists and creating its parent directories. A dest that
// already is a link to the master is left alone. If dest is on another
// filesystem (EXDEV) or the master has too many links (EMLINK), the master
// is copied instead and a warning is logged; a copy does not keep the
// master in use.
func (c *Cache) Link(ctx context.Context, src Source, dest string) error {
	s, err := c.resolve(src)
	if err != nil {
		return err
	}
	if dest == "" {
		return fmt.Errorf("link %s: empty destination", s.safe)
	}
	dest = filepath.Clean(dest)
	for range 3 {
		master, err := c.fetch(ctx, s)
		if err != nil {
			return err
		}
		err = c.linkMaster(master, dest, s)
		if !errors.Is(err, errMasterGone) {
			return err
		}
	}
	return fmt.Errorf("link %s to %s: %w", s.safe, dest, errMasterGone)
}

func (c *Cache) linkMaster(master, dest string, s source) error {
	c.cleanMu.RLock()
	defer c.cleanMu.RUnlock()
	mfi, err := os.Lstat(master)
	if errors.Is(err, os.ErrNotExist) {
		return errMasterGone
	}
	if err != nil {
		return fmt.Errorf("link %s: %w", s.safe, err)
	}
	if err := c.touch(master, mfi); err != nil {
		return fmt.Errorf("link %s: %w", s.safe, err)
	}
	if dfi, err := os.Lstat(dest); err == nil && os.SameFile(mfi, dfi) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return fmt.Errorf("link %s: %w", s.safe, err)
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := dest + tmpPrefix + hex.EncodeToString(rnd[:])
	err = os.Link(master, tmp)
	if errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.EMLINK) {
		c.log.Warn("hard link impossible, copying the master image instead",
			keyURL, s.safe, keyPath, master, keyDest, dest, keyErr, err)
		err = copyFile(master, tmp)
	}
	if err != nil {
		return fmt.Errorf("link %s to %s: %w", s.safe, dest, err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("link %s to %s: %w", s.safe, dest, err)
	}
	c.log.Debug("image linked", keyURL, s.safe, keyPath, master, keyDest, dest)
	return nil
}

// copyFile copies src to a new file dst (which must not exist), synced.
func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy image: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("copy image: %w", err)
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("copy image: %w", cerr)
		}
		if err != nil {
			os.Remove(dst)
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("copy image: %w", err)
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("copy image: sync: %w", err)
	}
	return nil
}
