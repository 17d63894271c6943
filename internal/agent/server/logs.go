package server

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// LogBuffer keeps the last bytes of the agent's log for log.collect_system_logs. It is an
// io.Writer safe for concurrent use; older output is dropped beyond its size.
type LogBuffer struct {
	mu   sync.Mutex
	max  int
	data []byte
}

// NewLogBuffer keeps the last max bytes.
func NewLogBuffer(max int) *LogBuffer { return &LogBuffer{max: max} }

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.data = append(b.data, p...)
	if over := len(b.data) - b.max; over > 0 {
		b.data = append([]byte(nil), b.data[over:]...)
	}
	return len(p), nil
}

// Bytes returns a copy of the kept log.
func (b *LogBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.data...)
}

// maxKmsg bounds the kernel log read from /dev/kmsg.
const maxKmsg = 8 << 20

func (m *Machine) collectSystemLogs(ctx context.Context, _ map[string]any, _ ProgressFunc) (any, error) {
	files := []struct {
		name string
		data []byte
	}{
		{"dmesg.txt", m.kernelLog()},
		{"ironwork-agent.log", m.agentLog()},
		{"cmdline.txt", readOr(filepath.Join(m.sysRoot(), "proc/cmdline"))},
		{"ip_addr.txt", ipAddresses()},
		{"mounts.txt", readOr(filepath.Join(m.sysRoot(), "proc/mounts"))},
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	now := time.Now()
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr := &tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: now, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("write log archive: %w", err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("write log archive: %w", err)
		}
	}
	if err := errors.Join(tw.Close(), zw.Close()); err != nil {
		return nil, fmt.Errorf("write log archive: %w", err)
	}
	return map[string]string{"system_logs": base64.StdEncoding.EncodeToString(buf.Bytes())}, nil
}

func (m *Machine) agentLog() []byte {
	if m.Logs == nil {
		return []byte("(agent log not kept)\n")
	}
	return m.Logs.Bytes()
}

// kernelLog reads the kernel ring buffer from /dev/kmsg (non-blocking, one record per read)
// as "seconds message" lines, falling back to a note.
func (m *Machine) kernelLog() []byte {
	f, err := os.OpenFile(filepath.Join(m.sysRoot(), "dev/kmsg"), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Appendf(nil, "(kernel log not readable: %v)\n", err)
	}
	defer f.Close()
	var out []byte
	rec := make([]byte, 8192)
	for len(out) < maxKmsg {
		n, err := syscall.Read(int(f.Fd()), rec)
		if err != nil {
			if err == syscall.EPIPE { // records overwritten while reading: go on
				continue
			}
			break // EAGAIN: the end of the buffer
		}
		if n <= 0 {
			break
		}
		out = append(out, formatKmsg(rec[:n])...)
	}
	return out
}

// formatKmsg turns "pri,seq,usec,flags;message\n" into "[   12.345678] message\n".
func formatKmsg(rec []byte) []byte {
	head, msg, ok := bytes.Cut(rec, []byte(";"))
	if !ok {
		return rec
	}
	fields := strings.Split(string(head), ",")
	var usec int64
	if len(fields) >= 3 {
		fmt.Sscan(fields[2], &usec)
	}
	if i := bytes.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i+1]
	}
	return fmt.Appendf(nil, "[%5d.%06d] %s", usec/1e6, usec%1e6, msg)
}

func readOr(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Appendf(nil, "(%v)\n", err)
	}
	return b
}

func ipAddresses() []byte {
	ifs, err := net.Interfaces()
	if err != nil {
		return fmt.Appendf(nil, "(%v)\n", err)
	}
	var b bytes.Buffer
	for _, ifc := range ifs {
		fmt.Fprintf(&b, "%d: %s <%s> mtu %d link %s\n", ifc.Index, ifc.Name, ifc.Flags, ifc.MTU, ifc.HardwareAddr)
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			fmt.Fprintf(&b, "    inet %s\n", a)
		}
	}
	return b.Bytes()
}
