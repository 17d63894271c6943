// Package ramdisk builds deploy ramdisks: initramfs images in the cpio "newc" format the
// Linux kernel unpacks at boot. Output is reproducible: every entry has owner root, time
// zero and an inode number given by its position, so the same inputs give the same bytes.
package ramdisk

import (
	"fmt"
	"io"
	"path"
	"strings"
)

// File modes of cpio entries (the type bits of stat(2)).
const (
	modeDir     = 0o040000
	modeRegular = 0o100000
	modeSymlink = 0o120000
)

// CPIO writes a newc archive.
type CPIO struct {
	w     io.Writer
	n     int64
	ino   int
	seen  map[string]bool
	err   error
	ended bool
}

// NewCPIO returns a writer of a newc archive to w.
func NewCPIO(w io.Writer) *CPIO { return &CPIO{w: w, seen: map[string]bool{}} }

// Dir adds a directory (and its missing parents).
func (c *CPIO) Dir(name string, perm uint32) error {
	name = clean(name)
	if name == "." || c.seen[name] {
		return c.err
	}
	if err := c.parents(name); err != nil {
		return err
	}
	c.seen[name] = true
	return c.entry(name, modeDir|perm&0o7777, nil)
}

// File adds a regular file with the given contents.
func (c *CPIO) File(name string, perm uint32, data []byte) error {
	name = clean(name)
	if err := c.parents(name); err != nil {
		return err
	}
	c.seen[name] = true
	return c.entry(name, modeRegular|perm&0o7777, data)
}

// Symlink adds a symbolic link name pointing at target.
func (c *CPIO) Symlink(name, target string) error {
	name = clean(name)
	if err := c.parents(name); err != nil {
		return err
	}
	c.seen[name] = true
	return c.entry(name, modeSymlink|0o777, []byte(target))
}

// Close writes the trailer. It does not close the underlying writer.
func (c *CPIO) Close() error {
	if c.ended {
		return c.err
	}
	c.ended = true
	return c.entry("TRAILER!!!", 0, nil)
}

// Size is the number of bytes written so far.
func (c *CPIO) Size() int64 { return c.n }

func clean(name string) string { return strings.TrimPrefix(path.Clean("/"+name), "/") }

func (c *CPIO) parents(name string) error {
	if dir := path.Dir(name); dir != "." && !c.seen[dir] {
		return c.Dir(dir, 0o755)
	}
	return c.err
}

func (c *CPIO) entry(name string, mode uint32, data []byte) error {
	if c.err != nil {
		return c.err
	}
	if c.ended && name != "TRAILER!!!" {
		return fmt.Errorf("cpio: %s added after Close", name)
	}
	ino := 0
	if name != "TRAILER!!!" {
		c.ino++
		ino = c.ino
	}
	nlink := 1
	if mode&0o170000 == modeDir {
		nlink = 2
	}
	// newc header: magic and 13 eight-digit hex fields, then the NUL-terminated name, padded
	// to four bytes, then the data, padded to four bytes.
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	c.write([]byte(hdr))
	c.write([]byte(name + "\x00"))
	c.pad()
	c.write(data)
	c.pad()
	return c.err
}

func (c *CPIO) write(b []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(b)
	c.n += int64(n)
	if err != nil {
		c.err = fmt.Errorf("write cpio archive: %w", err)
	}
}

func (c *CPIO) pad() {
	if r := c.n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}
