package tftp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"syscall"
	"time"
)

// maxWindowBytes bounds the data a transfer keeps for retransmission (windowsize x blksize); a
// larger windowsize request is answered with a smaller one, as RFC 7440 allows.
const maxWindowBytes = 1 << 20

// fileBuffer is the read buffer in front of the file, so small blocks do not cost a read each.
const fileBuffer = 64 << 10

var (
	errDeadline = errors.New("no reply before the retransmission timeout")
	errReadFile = errors.New("read file")
)

// params are the negotiated settings of one transfer.
type params struct {
	blksize int
	window  int
	timeout time.Duration
	oack    []option // options acknowledged, in the order the client sent them; nil for none
}

// negotiate picks the transfer's settings from the request's options (RFC 2347-2349, 7440).
// Options with values out of range and unknown options are ignored, i.e. not acknowledged.
// size is the file's transfer size, or -1 when it is not known.
func negotiate(req request, size int64, cfg Config) params {
	p := params{blksize: defaultBlockSize, window: 1, timeout: cfg.Timeout}
	var window int
	for _, o := range req.options {
		n, ok := parseUint(o.value)
		switch o.name {
		case "blksize":
			if !ok || n < minBlockSize {
				continue
			}
			p.blksize = int(min(n, uint64(cfg.MaxBlockSize)))
			p.oack = append(p.oack, option{o.name, strconv.Itoa(p.blksize)})
		case "timeout":
			if !ok || n < minTimeoutSec || n > maxTimeoutSec {
				continue
			}
			p.timeout = time.Duration(n) * time.Second
			p.oack = append(p.oack, option{o.name, strconv.FormatUint(n, 10)})
		case "tsize":
			// Not for an empty file: curl (7.88 at least) rejects "tsize 0" in an OACK
			// and aborts; the option is informational, leaving it out is allowed.
			if size <= 0 {
				continue
			}
			p.oack = append(p.oack, option{o.name, strconv.FormatInt(size, 10)})
		case "windowsize":
			if !ok || n < 1 {
				continue
			}
			window = int(min(n, maxWindowSize))
			p.oack = append(p.oack, option{o.name, ""}) // value set below, once blksize is known
		}
	}
	if window > 0 {
		p.window = max(1, min(window, maxWindowBytes/p.blksize))
		for i := range p.oack {
			if p.oack[i].name == "windowsize" {
				p.oack[i].value = strconv.Itoa(p.window)
			}
		}
	}
	return p
}

// parseUint parses a decimal option value.
func parseUint(v string) (uint64, bool) {
	if v == "" || len(v) > 19 {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 64)
	return n, err == nil
}

// serveRead runs one read request on its own socket, from local (nil: routed) to src, and
// returns what happened for the caller to report once the transfer's slot is free.
func (s *Server) serveRead(ctx context.Context, log *slog.Logger, req request, src net.Addr, local *net.UDPAddr) (info TransferInfo) {
	start := time.Now()
	info = TransferInfo{Remote: src, File: trimName(req.filename), Mode: req.mode, BlockSize: defaultBlockSize, WindowSize: 1}
	log = log.With(keyFile, info.File)
	defer func() { info.Duration = time.Since(start) }()
	conn, err := dialClient(src, local, s.cfg.Dial)
	if err != nil {
		info.Err = err
		log.Warn("tftp transfer not started", keyErr, err)
		return
	}
	defer conn.Close()
	info.Local = conn.LocalAddr()
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stop()

	f, size, err := openFile(s.files, info.File, req.mode, req.hasOption("tsize"))
	if err != nil {
		info.Err = err
		code, msg, level := errFileNotFound, "file not found", slog.LevelDebug // PXE probes many names
		if !errors.Is(err, ErrNotFound) {
			code, msg, level = errAccess, "access violation", slog.LevelInfo
		}
		log.Log(ctx, level, "tftp request refused", keyErr, err)
		conn.Write(appendError(nil, code, msg))
		return
	}
	defer f.Close()

	p := negotiate(req, size, s.cfg)
	info.BlockSize, info.WindowSize = p.blksize, p.window
	t := &transfer{
		conn:    conn,
		log:     log,
		src:     readerFor(f, p.blksize),
		blksize: p.blksize,
		window:  p.window,
		timeout: p.timeout,
		retries: s.cfg.Retries,
		ring:    make([][]byte, p.window+1),
		rbuf:    make([]byte, 1024),
	}
	if p.window == 1 {
		// Lock-step: one round trip per block, so the wake-up latency is the speed.
		if br, err := newBlockingReader(conn); err == nil {
			defer lockThread()()
			t.blocking = br
		}
	}
	var oack []byte
	if p.oack != nil {
		oack = appendOACK(nil, p.oack)
	}
	err = t.run(ctx, oack)
	info.Bytes, info.Err = t.bytes, err
	switch {
	case err == nil:
		log.Info("tftp file sent", keyMode, req.mode, keyBytes, t.bytes, keyBlockSize, p.blksize,
			keyWindowSize, p.window, keyDuration, time.Since(start))
	case ctx.Err() != nil:
		conn.Write(appendError(nil, errNotDefined, "server shutting down"))
		log.Info("tftp transfer stopped", keyErr, err)
	case errors.Is(err, errReadFile):
		conn.Write(appendError(nil, errNotDefined, "read error"))
		log.Warn("tftp transfer failed", keyErr, err)
	default:
		log.Info("tftp transfer failed", keyErr, err, keyBytes, t.bytes)
	}
	return info
}

// dialClient opens the transfer's socket: a new port on local, connected to the client, so the
// kernel keeps other senders' packets away. When local cannot be bound (a request sent to a
// broadcast address) the routed source address is used.
func dialClient(src net.Addr, local *net.UDPAddr, dial func(laddr, raddr *net.UDPAddr) (*net.UDPConn, error)) (*net.UDPConn, error) {
	if dial == nil {
		dial = func(laddr, raddr *net.UDPAddr) (*net.UDPConn, error) { return net.DialUDP("udp", laddr, raddr) }
	}
	raddr, ok := src.(*net.UDPAddr)
	if !ok {
		var err error
		if raddr, err = net.ResolveUDPAddr("udp", src.String()); err != nil {
			return nil, fmt.Errorf("client address: %w", err)
		}
	}
	if local != nil {
		if c, err := dial(local, raddr); err == nil {
			return c, nil
		}
	}
	c, err := dial(nil, raddr)
	if err != nil {
		return nil, fmt.Errorf("open transfer socket: %w", err)
	}
	return c, nil
}

// readerFor puts a buffer in front of f when blocks are small, so they do not cost a read
// each; large blocks are read straight into their packets.
func readerFor(f io.Reader, blksize int) io.Reader {
	if blksize >= fileBuffer/8 {
		return f
	}
	return bufio.NewReaderSize(f, fileBuffer)
}

// transfer sends one file in blocks. Block numbers are counted from 1 without limit (the
// wire carries the low 16 bits, so 65535 is followed by 0, as tftp-hpa and iPXE expect). The
// unacknowledged blocks and the next one, read ahead while the client answers, are kept in
// ring (window+1 slots, indexed by block number modulo its length) for retransmission.
type transfer struct {
	conn    *net.UDPConn
	log     *slog.Logger
	src     io.Reader
	blksize int
	window  int
	timeout time.Duration
	retries int

	ring  [][]byte // DATA packets of blocks acked+1 .. read
	acked uint64   // highest block the client acknowledged
	sent  uint64   // highest block sent
	read  uint64   // highest block read from src: sent or sent+1
	eof   bool     // src is exhausted; last is the final block
	last  uint64
	bytes int64
	rbuf  []byte
	armed time.Time // the socket's read deadline
	// blocking, when set, reads replies blocking the transfer's thread (lock-step
	// transfers; see blockingReader) instead of through the network poller.
	blocking *blockingReader
}

// run negotiates the options (when oack is not nil) and sends the file. It returns nil once
// the client has acknowledged the last block.
func (t *transfer) run(ctx context.Context, oack []byte) error {
	if oack != nil {
		if err := t.sendOACK(ctx, oack); err != nil {
			return err
		}
	}
	tries := 0
	for {
		if err := t.sendWindow(); err != nil {
			return err
		}
		deadline := time.Now().Add(t.timeout)
		for {
			r, err := t.await(ctx, deadline)
			if errors.Is(err, errDeadline) {
				if tries++; tries > t.retries {
					return fmt.Errorf("block %d: %w", t.acked+1, ErrTimeout)
				}
				break // resend the window
			}
			if err != nil {
				return err
			}
			b, ok := t.ackedBlock(r.block)
			if !ok {
				// A repeated or stale ACK. Answering it would double every packet from
				// here on (the sorcerer's apprentice); the timeout covers a real loss.
				continue
			}
			t.acked, tries = b, 0
			if t.eof && t.acked == t.last {
				return nil
			}
			break // RFC 7440: the next window starts after the acknowledged block
		}
	}
}

// sendOACK sends the option acknowledgement until the client answers with ACK 0.
func (t *transfer) sendOACK(ctx context.Context, oack []byte) error {
	for tries := 0; ; tries++ {
		if tries > t.retries {
			return fmt.Errorf("option acknowledgement: %w", ErrTimeout)
		}
		if _, err := t.conn.Write(oack); err != nil {
			return fmt.Errorf("send option acknowledgement: %w", err)
		}
		deadline := time.Now().Add(t.timeout)
		for {
			r, err := t.await(ctx, deadline)
			if errors.Is(err, errDeadline) {
				break
			}
			if err != nil {
				return err
			}
			if r.block == 0 {
				return nil
			}
		}
	}
}

// sendWindow sends blocks acked+1 .. acked+window (fewer at the end of the file), reading
// those not read yet, then reads the next block ahead so that it is ready when the ACK comes.
func (t *transfer) sendWindow() error {
	for b := t.acked + 1; b <= t.acked+uint64(t.window); b++ {
		if b > t.read {
			if t.eof {
				break
			}
			if err := t.fill(b); err != nil {
				return err
			}
		}
		if _, err := t.conn.Write(t.ring[b%uint64(len(t.ring))]); err != nil {
			return fmt.Errorf("send block %d: %w", b, err)
		}
		t.sent = max(t.sent, b)
	}
	if !t.eof && t.read == t.sent {
		return t.fill(t.read + 1)
	}
	return nil
}

// fill reads block b (which is t.read+1) into its ring slot.
func (t *transfer) fill(b uint64) error {
	slot := b % uint64(len(t.ring))
	pkt := t.ring[slot]
	if pkt == nil {
		pkt = make([]byte, 0, 4+t.blksize)
	}
	pkt = appendData(pkt[:0], uint16(b))[:4+t.blksize]
	n, err := io.ReadFull(t.src, pkt[4:])
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		t.eof, t.last = true, b
	case err != nil:
		return fmt.Errorf("%w: %w", errReadFile, err)
	}
	t.ring[slot] = pkt[:4+n]
	t.read = b
	t.bytes += int64(n)
	return nil
}

// ackedBlock maps the 16-bit block number of an ACK to the block it acknowledges. It reports
// false for an ACK of nothing new: one at or below acked, or above the blocks sent.
func (t *transfer) ackedBlock(n uint16) (uint64, bool) {
	ahead := uint64(n - uint16(t.acked))
	if ahead == 0 || t.acked+ahead > t.sent {
		return 0, false
	}
	return t.acked + ahead, true
}

// await returns the client's next ACK before deadline. It returns errDeadline when there is
// none, and an error wrapping ErrClient when the client sent an ERROR.
func (t *transfer) await(ctx context.Context, deadline time.Time) (reply, error) {
	for {
		if err := ctx.Err(); err != nil {
			return reply{}, err
		}
		if t.blocking != nil {
			n, err := t.blocking.read(ctx, t.rbuf, deadline)
			if err != nil {
				return reply{}, err
			}
			r, err := parseReply(t.rbuf[:n])
			if err != nil {
				t.log.Debug("tftp bad packet in a transfer dropped", keyErr, err)
				continue
			}
			if r.op == opERROR {
				return reply{}, fmt.Errorf("%w: code %d %q", ErrClient, r.code, r.msg)
			}
			return r, nil
		}
		// The socket's deadline is moved only when it must come earlier: a later one is
		// handled by re-arming when the earlier fires. That saves a timer update per block.
		if t.armed.IsZero() || deadline.Before(t.armed) {
			t.conn.SetReadDeadline(deadline)
			t.armed = deadline
			if err := ctx.Err(); err != nil { // cancelled before the deadline was set: see AfterFunc
				return reply{}, err
			}
		}
		n, err := t.conn.Read(t.rbuf)
		if err != nil {
			if ctx.Err() != nil {
				return reply{}, ctx.Err()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.armed = time.Time{}
				if time.Now().Before(deadline) {
					continue
				}
				return reply{}, errDeadline
			}
			if errors.Is(err, syscall.ECONNREFUSED) {
				return reply{}, fmt.Errorf("client port closed: %w", err)
			}
			return reply{}, fmt.Errorf("read reply: %w", err)
		}
		r, err := parseReply(t.rbuf[:n])
		if err != nil {
			t.log.Debug("tftp bad packet in a transfer dropped", keyErr, err)
			continue
		}
		if r.op == opERROR {
			return reply{}, fmt.Errorf("%w: code %d %q", ErrClient, r.code, r.msg)
		}
		return r, nil
	}
}
