package tftp

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestGetOptions(t *testing.T) {
	dir := t.TempDir()
	small := writeFile(t, dir, "small", 1000)
	exact := writeFile(t, dir, "exact", 512*8)
	empty := writeFile(t, dir, "empty", 0)
	ts := startServer(t, dir, Config{}, "")
	tests := []struct {
		name     string
		file     string
		want     []byte
		opts     []string
		wantOACK map[string]string
	}{
		{name: "no options", file: "small", want: small},
		{name: "leading slash", file: "/small", want: small},
		{name: "exact multiple", file: "exact", want: exact},
		{name: "empty", file: "empty", want: empty},
		{name: "tsize", file: "small", want: small, opts: []string{"tsize", "0"},
			wantOACK: map[string]string{"tsize": "1000"}},
		{name: "blksize and windowsize", file: "exact", want: exact, opts: []string{"blksize", "100", "windowsize", "4", "timeout", "2"},
			wantOACK: map[string]string{"blksize": "100", "windowsize": "4", "timeout": "2"}},
		{name: "unknown option alone: no OACK", file: "small", want: small, opts: []string{"multicast", ""}},
		{name: "blksize clamped", file: "small", want: small, opts: []string{"blksize", "99999"},
			wantOACK: map[string]string{"blksize": "65464"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newRawClient(t, ts.addr)
			got, oack := c.get(tt.file, tt.opts...)
			if !bytes.Equal(got, tt.want) {
				t.Errorf("got %d bytes, want %d (equal prefix: %v)", len(got), len(tt.want), bytes.HasPrefix(tt.want, got))
			}
			if len(oack) != len(tt.wantOACK) {
				t.Errorf("OACK %v, want %v", oack, tt.wantOACK)
			}
			for k, v := range tt.wantOACK {
				if oack[k] != v {
					t.Errorf("OACK %s=%q, want %q", k, oack[k], v)
				}
			}
			info := ts.waitInfo(t, 5*time.Second)
			if info.Err != nil || info.Bytes != int64(len(tt.want)) {
				t.Errorf("OnTransfer: err %v, bytes %d; want nil, %d", info.Err, info.Bytes, len(tt.want))
			}
		})
	}
}

// The transfer's socket answers from the address the request was sent to, also when the server
// listens on a wildcard address: 127.0.0.2 is a loopback address the kernel would not pick as
// the source for a reply to 127.0.0.1 on its own.
func TestReplyFromRequestedAddress(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "f", 600)
	// "udp" on 0.0.0.0 and [::] is a dual-stack IPv6 socket in Go; "udp4" is a plain IPv4 one.
	for _, listen := range []string{"udp4 0.0.0.0:0", "0.0.0.0:0", "[::]:0"} {
		t.Run(listen, func(t *testing.T) {
			ts := startServer(t, dir, Config{}, listen)
			to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: ts.addr.Port}
			c := newRawClient(t, to)
			c.request(rrq(opRRQ, "f", "octet", "tsize", "0"))
			p := c.must(5 * time.Second)
			if p.op != opOACK || !p.from.IP.Equal(to.IP) {
				t.Fatalf("first reply opcode %d from %s, want OACK from %s", p.op, p.from, to.IP)
			}
			c.ack(0)
			if p = c.must(5 * time.Second); p.op != opDATA || !p.from.IP.Equal(to.IP) {
				t.Fatalf("DATA from %s, want %s", p.from, to.IP)
			}
			// The busy/refusal path answers from the listening socket, also from 127.0.0.2.
			c2 := newRawClient(t, to)
			c2.request(rrq(opWRQ, "f", "octet"))
			if p = c2.must(5 * time.Second); p.op != opERROR || !p.from.IP.Equal(to.IP) {
				t.Fatalf("WRQ answer opcode %d from %s, want ERROR from %s", p.op, p.from, to.IP)
			}
		})
	}
}

func TestIPv6(t *testing.T) {
	dir := t.TempDir()
	want := writeFile(t, dir, "f", 3000)
	for _, listen := range []string{"[::1]:0", "[::]:0"} {
		t.Run(listen, func(t *testing.T) {
			ts := startServer(t, dir, Config{}, listen) // skips without IPv6
			to := &net.UDPAddr{IP: net.IPv6loopback, Port: ts.addr.Port}
			c := newRawClient(t, to)
			got, _ := c.get("f", "blksize", "1000")
			if !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes, want %d", len(got), len(want))
			}
			if !c.peer.IP.Equal(net.IPv6loopback) {
				t.Fatalf("transfer from %s, want ::1", c.peer)
			}
		})
	}
}

func TestRefused(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, dir, "ok", 10)
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../"+filepath.Base(outside)+"/secret", filepath.Join(dir, "escape-rel")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("ok", filepath.Join(dir, "inside")); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, dir, Config{}, "")
	tests := []struct {
		name string
		req  []byte
		code uint16
	}{
		{"dotdot", rrq(opRRQ, "../x", "octet"), errAccess},
		{"absolute escape", rrq(opRRQ, "/../../etc/passwd", "octet"), errAccess},
		{"inner dotdot", rrq(opRRQ, "sub/../ok", "octet"), errAccess},
		{"symlink out (absolute)", rrq(opRRQ, "escape", "octet"), errAccess},
		{"symlink out (relative)", rrq(opRRQ, "escape-rel", "octet"), errAccess},
		{"directory", rrq(opRRQ, "sub", "octet"), errAccess},
		{"root", rrq(opRRQ, "/", "octet"), errAccess},
		{"missing", rrq(opRRQ, "nope", "octet"), errFileNotFound},
		{"write", rrq(opWRQ, "ok", "octet"), errAccess},
		{"write new", rrq(opWRQ, "new", "octet", "tsize", "10"), errAccess},
		{"mail mode", rrq(opRRQ, "ok", "mail"), errIllegalOp},
		{"unknown opcode", []byte{0, 9, 'x', 0}, errIllegalOp},
		{"truncated request", []byte{0, 1, 'o', 'k'}, errIllegalOp},
		{"ACK to the listener", []byte{0, 4, 0, 1}, errUnknownTID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newRawClient(t, ts.addr)
			c.request(tt.req)
			p := c.must(5 * time.Second)
			if p.op != opERROR || p.code != tt.code {
				t.Fatalf("got opcode %d code %d %q, want ERROR %d", p.op, p.code, p.msg, tt.code)
			}
			if p, err := c.recv(300 * time.Millisecond); !errors.Is(err, errNothing) {
				t.Fatalf("after the ERROR got opcode %d block %d", p.op, p.block)
			}
		})
	}
	t.Run("symlink inside is served", func(t *testing.T) {
		got, _ := newRawClient(t, ts.addr).get("inside")
		if len(got) != 10 {
			t.Fatalf("got %d bytes, want 10", len(got))
		}
	})
	t.Run("ERROR to the listener is not answered", func(t *testing.T) {
		c := newRawClient(t, ts.addr)
		c.request(appendError(nil, 0, "x"))
		if p, err := c.recv(300 * time.Millisecond); !errors.Is(err, errNothing) {
			t.Fatalf("got opcode %d", p.op)
		}
	})
}

func TestBusy(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "f", 2000)
	ts := startServer(t, dir, Config{MaxTransfers: 1, Timeout: 5 * time.Second}, "")
	holder := newRawClient(t, ts.addr)
	holder.request(rrq(opRRQ, "f", "octet"))
	if p := holder.must(5 * time.Second); p.op != opDATA || p.block != 1 {
		t.Fatalf("holder got opcode %d block %d, want DATA 1", p.op, p.block)
	}
	// A repeat of the holder's request (same client port) is not a second transfer.
	holder.request(rrq(opRRQ, "f", "octet"))
	c := newRawClient(t, ts.addr)
	c.request(rrq(opRRQ, "f", "octet"))
	p := c.must(5 * time.Second)
	if p.op != opERROR || p.code != errNotDefined || p.msg != "server busy" {
		t.Fatalf("second client got opcode %d code %d %q, want ERROR 0 \"server busy\"", p.op, p.code, p.msg)
	}
	if info := ts.waitInfo(t, 5*time.Second); !errors.Is(info.Err, ErrBusy) {
		t.Fatalf("OnTransfer err %v, want ErrBusy", info.Err)
	}
	// The holder finishes; then the slot is free again.
	holder.ack(1)
	for {
		p := holder.must(5 * time.Second)
		if p.op != opDATA {
			t.Fatalf("holder got opcode %d", p.op)
		}
		holder.ack(p.block)
		if len(p.data) < 512 {
			break
		}
	}
	if info := ts.waitInfo(t, 5*time.Second); info.Err != nil || info.Bytes != 2000 {
		t.Fatalf("holder's transfer: %v, %d bytes", info.Err, info.Bytes)
	}
	if got, _ := newRawClient(t, ts.addr).get("f"); len(got) != 2000 {
		t.Fatalf("after the holder: got %d bytes", len(got))
	}
}

// OnTransfer is called once the transfer's slot is free: a request made from the report of
// the only transfer a one-slot server runs is served, not refused as busy.
func TestReportedAfterSlotIsFree(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "f", 100)
	probes := make(chan *rawClient, 1)
	replies := make(chan packet, 1)
	var once sync.Once
	ts := startServer(t, dir, Config{MaxTransfers: 1, Timeout: 5 * time.Second, OnTransfer: func(info TransferInfo) {
		if info.Err != nil {
			return
		}
		once.Do(func() {
			c := <-probes
			c.request(rrq(opRRQ, "f", "octet"))
			p, err := c.recv(5 * time.Second)
			if err != nil {
				p = packet{op: 0, msg: err.Error()}
			}
			replies <- p
		})
	}}, "")
	probes <- newRawClient(t, ts.addr)
	if got, _ := newRawClient(t, ts.addr).get("f"); len(got) != 100 {
		t.Fatalf("first transfer: %d bytes, want 100", len(got))
	}
	select {
	case p := <-replies:
		if p.op != opDATA || p.block != 1 {
			t.Fatalf("request from the report got opcode %d %q, want DATA 1", p.op, p.msg)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no report of the first transfer")
	}
}

func TestLostACKRetransmits(t *testing.T) {
	dir := t.TempDir()
	want := writeFile(t, dir, "f", 1300)
	ts := startServer(t, dir, Config{Timeout: 200 * time.Millisecond, Retries: 3}, "")
	c := newRawClient(t, ts.addr)
	c.request(rrq(opRRQ, "f", "octet"))
	var got []byte
	p := c.must(5 * time.Second)
	for _, b := range []uint16{1, 2, 3} {
		if p.op != opDATA || p.block != b {
			t.Fatalf("got opcode %d block %d, want DATA %d", p.op, p.block, b)
		}
		// Drop the ACK of block 2 (i.e. never send it): the block must come again.
		if b == 2 {
			again := c.must(5 * time.Second)
			if again.op != opDATA || again.block != 2 || !bytes.Equal(again.data, p.data) {
				t.Fatalf("after a lost ACK got opcode %d block %d, want DATA 2 again", again.op, again.block)
			}
		}
		got = append(got, p.data...)
		c.ack(b)
		if b < 3 {
			p = c.must(5 * time.Second)
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d", len(got), len(want))
	}
	if info := ts.waitInfo(t, 5*time.Second); info.Err != nil {
		t.Fatalf("transfer: %v", info.Err)
	}
}

// Duplicate ACKs (a client that ACKs twice, or a delayed ACK) must not make the server send a
// block twice: that is the sorcerer's apprentice, which doubles every packet from then on.
func TestDuplicateACKsNotAnswered(t *testing.T) {
	dir := t.TempDir()
	const blocks = 20
	want := writeFile(t, dir, "f", 512*blocks+7)
	ts := startServer(t, dir, Config{Timeout: 5 * time.Second}, "")
	c := newRawClient(t, ts.addr)
	c.request(rrq(opRRQ, "f", "octet"))
	var got []byte
	for next := uint16(1); ; next++ {
		p := c.must(5 * time.Second)
		if p.op != opDATA || p.block != next {
			t.Fatalf("got opcode %d block %d, want DATA %d (a duplicate means an ACK was answered twice)", p.op, p.block, next)
		}
		got = append(got, p.data...)
		c.ack(next)
		c.ack(next)
		if next > 1 {
			c.ack(next - 1) // an old one too
		}
		if len(p.data) < 512 {
			break
		}
	}
	if p, err := c.recv(300 * time.Millisecond); !errors.Is(err, errNothing) {
		t.Fatalf("after the last block got opcode %d block %d", p.op, p.block)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d", len(got), len(want))
	}
}

func TestSilentClientFreesSlot(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "f", 2000)
	const retries = 2
	ts := startServer(t, dir, Config{MaxTransfers: 1, Timeout: 150 * time.Millisecond, Retries: retries}, "")
	c := newRawClient(t, ts.addr)
	c.request(rrq(opRRQ, "f", "octet"))
	copies := 0
	for {
		p, err := c.recv(2 * time.Second)
		if errors.Is(err, errNothing) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if p.op != opDATA || p.block != 1 {
			t.Fatalf("got opcode %d block %d, want DATA 1", p.op, p.block)
		}
		copies++
	}
	if copies != retries+1 {
		t.Errorf("DATA 1 sent %d times, want %d (once and %d retransmissions)", copies, retries+1, retries)
	}
	if info := ts.waitInfo(t, 5*time.Second); !errors.Is(info.Err, ErrTimeout) {
		t.Fatalf("OnTransfer err %v, want ErrTimeout", info.Err)
	}
	if got, _ := newRawClient(t, ts.addr).get("f"); len(got) != 2000 {
		t.Fatalf("next client got %d bytes, want 2000", len(got))
	}
}

// RFC 7440: a window of blocks is sent before the ACK; when a block is lost the client
// acknowledges the last block it has in order and the next window starts after it.
func TestWindowLoss(t *testing.T) {
	dir := t.TempDir()
	const blksize, window = 64, 4
	want := writeFile(t, dir, "f", blksize*10+3)
	ts := startServer(t, dir, Config{Timeout: 5 * time.Second}, "")
	c := newRawClient(t, ts.addr)
	c.request(rrq(opRRQ, "f", "octet", "blksize", strconv.Itoa(blksize), "windowsize", strconv.Itoa(window)))
	if p := c.must(5 * time.Second); p.op != opOACK || p.opts["windowsize"] != "4" {
		t.Fatalf("got opcode %d %v, want OACK with windowsize 4", p.op, p.opts)
	}
	c.ack(0)
	recvBlocks := func(n int) []uint16 {
		var bs []uint16
		for range n {
			bs = append(bs, c.must(5*time.Second).block)
		}
		return bs
	}
	if bs := recvBlocks(4); !equal(bs, []uint16{1, 2, 3, 4}) {
		t.Fatalf("first window %v", bs)
	}
	c.ack(4)
	if bs := recvBlocks(4); !equal(bs, []uint16{5, 6, 7, 8}) {
		t.Fatalf("second window %v", bs)
	}
	c.ack(5) // 6 was "lost"
	if bs := recvBlocks(4); !equal(bs, []uint16{6, 7, 8, 9}) {
		t.Fatalf("window after ACK 5: %v, want 6..9", bs)
	}
	c.ack(9)
	if bs := recvBlocks(2); !equal(bs, []uint16{10, 11}) {
		t.Fatalf("last window %v, want 10, 11", bs)
	}
	c.ack(11)
	if info := ts.waitInfo(t, 5*time.Second); info.Err != nil || info.Bytes != int64(len(want)) {
		t.Fatalf("transfer: %v, %d bytes", info.Err, info.Bytes)
	}
}

func equal(a, b []uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// More than 65535 blocks: the block number goes from 65535 to 0. Small blocks keep it fast.
func TestBlockNumberRollover(t *testing.T) {
	dir := t.TempDir()
	const blksize = 8
	want := writeFile(t, dir, "f", blksize*70000+5)
	ts := startServer(t, dir, Config{}, "")
	got, oack := newRawClient(t, ts.addr).get("f", "blksize", "8", "windowsize", "256")
	if oack["windowsize"] != "256" {
		t.Fatalf("OACK %v", oack)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d", len(got), len(want))
	}
}

func TestOACKRefusedByClient(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "f", 100)
	ts := startServer(t, dir, Config{}, "")
	c := newRawClient(t, ts.addr)
	c.request(rrq(opRRQ, "f", "octet", "blksize", "1024"))
	if p := c.must(5 * time.Second); p.op != opOACK {
		t.Fatalf("got opcode %d, want OACK", p.op)
	}
	c.send(appendError(nil, errOptionsRefused, "no thanks"))
	// Like some PXE ROMs, ask again at once from the same port, without options: that is a
	// new transfer, not a repeat of the one just refused.
	c.peer = nil
	if got, oack := c.get("f"); len(got) != 100 || oack != nil {
		t.Fatalf("second request: %d bytes, OACK %v; want 100 bytes, no OACK", len(got), oack)
	}
	var errs []error
	for range 2 {
		errs = append(errs, ts.waitInfo(t, 5*time.Second).Err)
	}
	if !(errors.Is(errs[0], ErrClient) && errs[1] == nil) && !(errs[0] == nil && errors.Is(errs[1], ErrClient)) {
		t.Fatalf("OnTransfer errors %v, want ErrClient and nil", errs)
	}
}

func TestNetasciiMode(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "t"), []byte("line 1\nline 2\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, dir, Config{}, "")
	c := newRawClient(t, ts.addr)
	c.request(rrq(opRRQ, "t", "netascii", "tsize", "0"))
	want := "line 1\r\nline 2\r\x00\r\n"
	p := c.must(5 * time.Second)
	if p.op != opOACK || p.opts["tsize"] != strconv.Itoa(len(want)) {
		t.Fatalf("got opcode %d %v, want OACK tsize %d", p.op, p.opts, len(want))
	}
	c.ack(0)
	if p = c.must(5 * time.Second); string(p.data) != want {
		t.Fatalf("got %q, want %q", p.data, want)
	}
	c.ack(1)
}

// Cancelling Serve's context ends running transfers at once (the client is told) and Serve
// returns.
func TestServeStopsTransfers(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "f", 5000)
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	srv, err := NewDir(dir, Config{Timeout: 30 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, conn) }()
	c2 := newRawClient(t, conn.LocalAddr().(*net.UDPAddr))
	c2.request(rrq(opRRQ, "f", "octet"))
	if p := c2.must(5 * time.Second); p.op != opDATA {
		t.Fatalf("got opcode %d", p.op)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return within 5s of cancel (the transfer's timeout is 30s)")
	}
	if p := c2.must(5 * time.Second); p.op != opERROR || p.msg != "server shutting down" {
		t.Fatalf("got opcode %d %q, want ERROR \"server shutting down\"", p.op, p.msg)
	}
}
