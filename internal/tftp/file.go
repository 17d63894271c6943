package tftp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// trimName removes the leading slashes clients put before a name ("/pxelinux.0").
func trimName(name string) string { return strings.TrimLeft(name, "/") }

// openFile opens a regular file of fsys for reading in mode. A name that is not a valid fs
// path (".." elements, empty elements, "."), that leaves the root, or that names anything but
// a regular file is ErrAccess; a missing file is ErrNotFound. size is the number of bytes the
// transfer will carry: the file's size in octet mode; in netascii mode it is computed (by
// reading the file once more) only when wantSize is set, else -1.
func openFile(fsys fs.FS, name, mode string, wantSize bool) (io.ReadCloser, int64, error) {
	if name == "" || name == "." || !fs.ValidPath(name) {
		return nil, 0, fmt.Errorf("open %q: invalid path: %w", name, ErrAccess)
	}
	fi, err := fs.Stat(fsys, name) // before Open, so a FIFO is never opened (and never blocks)
	if err != nil {
		return nil, 0, fmt.Errorf("open %q: %w", name, classify(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("open %q: %s is not a regular file: %w", name, fi.Mode().Type(), ErrAccess)
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, 0, fmt.Errorf("open %q: %w", name, classify(err))
	}
	if fi, err = f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("open %q: not a regular file: %w", name, ErrAccess)
	}
	if mode != modeNetascii {
		return f, fi.Size(), nil
	}
	size := int64(-1)
	if wantSize {
		if size, err = netasciiSize(fsys, name); err != nil {
			f.Close()
			return nil, 0, fmt.Errorf("open %q: %w", name, err)
		}
	}
	return netasciiFile{Reader: newNetascii(f), Closer: f}, size, nil
}

// classify maps an open error to ErrNotFound or ErrAccess, keeping the cause. Everything that
// is not "does not exist" (permission, a path escaping the os.Root, a symlink loop) is a refusal.
func classify(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return fmt.Errorf("%w: %w", ErrAccess, err)
}

type netasciiFile struct {
	io.Reader
	io.Closer
}

// netascii converts a file to netascii (RFC 764 as used by RFC 1350): LF becomes CR LF and a
// bare CR becomes CR NUL.
type netascii struct {
	r       *bufio.Reader
	pending int // a byte still to emit after a CR, or -1
}

func newNetascii(r io.Reader) *netascii {
	return &netascii{r: bufio.NewReaderSize(r, fileBuffer), pending: -1}
}

func (n *netascii) Read(p []byte) (int, error) {
	i := 0
	for i < len(p) {
		if n.pending >= 0 {
			p[i] = byte(n.pending)
			n.pending = -1
			i++
			continue
		}
		c, err := n.r.ReadByte()
		if err != nil {
			if i > 0 {
				return i, nil
			}
			return 0, err
		}
		switch c {
		case '\n':
			c, n.pending = '\r', '\n'
		case '\r':
			n.pending = 0
		}
		p[i] = c
		i++
	}
	return i, nil
}

// netasciiSize is the length of name once converted to netascii.
func netasciiSize(fsys fs.FS, name string) (int64, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return 0, classify(err)
	}
	defer f.Close()
	var size int64
	buf := make([]byte, fileBuffer)
	for {
		n, err := f.Read(buf)
		size += int64(n)
		for _, c := range buf[:n] {
			if c == '\n' || c == '\r' {
				size++
			}
		}
		if errors.Is(err, io.EOF) {
			return size, nil
		}
		if err != nil {
			return 0, fmt.Errorf("size netascii: %w", err)
		}
	}
}
