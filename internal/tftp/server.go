// Package tftp is Ironwork's read-only TFTP server for network boot: RFC 1350 read requests in
// octet and netascii mode, with the option extension (RFC 2347) and the blksize (RFC 2348),
// timeout and tsize (RFC 2349) and windowsize (RFC 7440) options.
//
// It serves files from an fs.FS and nothing else: it never writes (a WRQ gets an access
// violation), never serves anything but regular files, and with NewDir it is confined to one
// directory by os.Root, so "..", absolute paths and symlinks that leave the directory are
// refused. Each transfer runs on its own UDP socket bound to the address the request arrived on;
// at most Config.MaxTransfers run at once and a request beyond that is answered "server busy" at
// once. It must not know about nodes, ports or boot configuration: callers put files in the FS
// and learn what was served through Config.OnTransfer.
package tftp

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// Defaults for a zero Config.
const (
	DefaultMaxTransfers = 64
	DefaultTimeout      = time.Second
	DefaultRetries      = 5
)

// Log attribute keys.
const (
	keyRemote     = "remote"
	keyLocal      = "local"
	keyFile       = "file"
	keyMode       = "mode"
	keyBlockSize  = "blksize"
	keyWindowSize = "windowsize"
	keyBytes      = "bytes"
	keyDuration   = "duration"
	keyErr        = "err"
	keyOpcode     = "opcode"
)

// Errors reported in TransferInfo.Err; match them with errors.Is.
var (
	// ErrBusy: MaxTransfers transfers were running; the client got "server busy".
	ErrBusy = errors.New("server busy")
	// ErrNotFound: the file does not exist.
	ErrNotFound = errors.New("file not found")
	// ErrAccess: the name is not a valid path inside the root, leaves it, or is not a regular
	// file, or the file cannot be opened.
	ErrAccess = errors.New("access violation")
	// ErrTimeout: the client stopped acknowledging; the server gave up after Config.Retries
	// retransmissions.
	ErrTimeout = errors.New("client timed out")
	// ErrClient: the client ended the transfer with an ERROR packet.
	ErrClient = errors.New("client sent an error")
)

// Config tunes a Server. The zero value is usable: zero fields take the defaults.
type Config struct {
	// MaxTransfers bounds the transfers running at once (default 64).
	MaxTransfers int
	// Timeout is the retransmission timeout when the client does not negotiate one (default 1s).
	Timeout time.Duration
	// Retries is how many times a packet is retransmitted before the transfer is abandoned
	// (default 5): a silent client holds its slot for Timeout x (Retries+1).
	Retries int
	// MaxBlockSize caps the blksize a client may negotiate, 8..65464 (default 65464).
	MaxBlockSize int
	// OnTransfer, when set, is called once per read request that named a file (served, failed
	// or refused), from the goroutine that handled it, after the transfer's slot is free. It
	// must be safe for concurrent use and return quickly: a refusal's call runs on the receive
	// loop.
	OnTransfer func(TransferInfo)
	// Dial opens a transfer's socket from laddr (nil: any) to the client; default
	// net.DialUDP. A server whose listener is in another network namespace opens them there.
	Dial func(laddr, raddr *net.UDPAddr) (*net.UDPConn, error)
}

// TransferInfo describes one read request and how it ended.
type TransferInfo struct {
	Remote     net.Addr
	Local      net.Addr // the transfer's socket; nil when refused before one was opened
	File       string   // as requested, leading "/" removed
	Mode       string   // "octet" or "netascii"
	BlockSize  int
	WindowSize int
	Bytes      int64 // payload bytes sent once (retransmissions not counted)
	Duration   time.Duration
	Err        error // nil when the client acknowledged the last block
}

// Validate reports a Config field that is out of range.
func (c Config) Validate() error {
	switch {
	case c.MaxTransfers < 0:
		return fmt.Errorf("tftp config: MaxTransfers %d is negative", c.MaxTransfers)
	case c.Timeout < 0:
		return fmt.Errorf("tftp config: Timeout %s is negative", c.Timeout)
	case c.Retries < 0:
		return fmt.Errorf("tftp config: Retries %d is negative", c.Retries)
	case c.MaxBlockSize != 0 && (c.MaxBlockSize < minBlockSize || c.MaxBlockSize > maxBlockSize):
		return fmt.Errorf("tftp config: MaxBlockSize %d is outside %d..%d", c.MaxBlockSize, minBlockSize, maxBlockSize)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.MaxTransfers <= 0 {
		c.MaxTransfers = DefaultMaxTransfers
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Retries <= 0 {
		c.Retries = DefaultRetries
	}
	if c.MaxBlockSize < minBlockSize || c.MaxBlockSize > maxBlockSize {
		c.MaxBlockSize = maxBlockSize
	}
	return c
}

// Server answers TFTP read requests from an fs.FS.
type Server struct {
	files fs.FS
	cfg   Config
	log   *slog.Logger
	slots chan struct{}

	mu     sync.Mutex
	active map[string]*activeRequest // client address -> its running transfer's request
}

// activeRequest is the request of a running transfer, to recognise the client resending it.
type activeRequest struct{ raw string }

// New returns a Server for files. Out-of-range Config fields take their defaults (use
// Config.Validate to reject them instead). A nil log discards.
func New(files fs.FS, cfg Config, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	return &Server{
		files:  files,
		cfg:    cfg,
		log:    log,
		slots:  make(chan struct{}, cfg.MaxTransfers),
		active: make(map[string]*activeRequest),
	}
}

// NewDir returns a Server confined to dir with os.Root: names that leave dir, including through
// symlinks, are refused. The directory stays open for the life of the process.
func NewDir(dir string, cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open tftp root: %w", err)
	}
	return New(root.FS(), cfg, log), nil
}

// ListenAndServe listens on the UDP address addr ("127.0.0.1:69", ":69") and serves until ctx
// ends.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("listen tftp: %w", err)
	}
	defer conn.Close()
	return s.Serve(ctx, conn)
}

// Serve reads requests from conn until ctx ends, then waits for the running transfers (which
// stop at once) and returns nil. It returns early with an error when conn fails. Serve does not
// close conn; it changes its read deadline.
func (s *Server) Serve(ctx context.Context, conn net.PacketConn) error {
	ln := newListener(conn, s.log)
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stop()
	s.log.Info("tftp serving", keyLocal, conn.LocalAddr().String())
	buf := make([]byte, 65536)
	for {
		if ctx.Err() != nil {
			return nil
		}
		n, src, dst, err := ln.read(buf)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				conn.SetReadDeadline(time.Time{}) // a deadline left by the caller; ours is ctx's
				continue
			}
			return fmt.Errorf("read tftp request: %w", err)
		}
		s.handle(ctx, ln, buf[:n], src, dst, &wg)
	}
}

// handle answers one datagram that arrived on the listening socket.
func (s *Server) handle(ctx context.Context, ln *listener, p []byte, src net.Addr, dst *net.UDPAddr, wg *sync.WaitGroup) {
	log := s.log.With(keyRemote, src.String())
	req, err := parseRequest(p)
	if err != nil {
		if len(p) < 2 {
			log.Debug("tftp datagram dropped", keyErr, err)
			return
		}
		switch op := uint16(p[0])<<8 | uint16(p[1]); op {
		case opERROR:
			log.Debug("tftp error packet on the listening socket dropped", keyErr, err)
		case opDATA, opACK, opOACK:
			log.Debug("tftp packet outside a transfer", keyOpcode, op)
			ln.reply(appendError(nil, errUnknownTID, "unknown transfer ID"), src, dst)
		default:
			log.Debug("tftp bad request", keyOpcode, op, keyErr, err)
			ln.reply(appendError(nil, errIllegalOp, "illegal TFTP operation"), src, dst)
		}
		return
	}
	if req.op == opWRQ {
		log.Debug("tftp write request refused", keyFile, req.filename)
		ln.reply(appendError(nil, errAccess, "read-only server"), src, dst)
		return
	}
	if req.mode != modeOctet && req.mode != modeNetascii {
		log.Debug("tftp mode refused", keyMode, req.mode)
		ln.reply(appendError(nil, errIllegalOp, "unsupported mode"), src, dst)
		return
	}
	key := src.String()
	s.mu.Lock()
	running, dup := s.active[key]
	s.mu.Unlock()
	if dup && running.raw == string(p) {
		// The client resent its request before our first reply reached it; the running
		// transfer answers it. (A different request from the same port, e.g. one without
		// the options the client just refused, is a new transfer.)
		log.Debug("tftp repeated request ignored", keyFile, req.filename)
		return
	}
	select {
	case s.slots <- struct{}{}:
	default:
		log.Warn("tftp busy, request refused", keyFile, req.filename)
		ln.reply(appendError(nil, errNotDefined, "server busy"), src, dst)
		s.report(TransferInfo{Remote: src, File: trimName(req.filename), Mode: req.mode, Err: ErrBusy})
		return
	}
	mine := &activeRequest{raw: string(p)}
	s.mu.Lock()
	s.active[key] = mine
	s.mu.Unlock()
	wg.Add(1)
	go func() {
		defer wg.Done()
		info := s.serveRead(ctx, log, req, src, dst)
		s.mu.Lock()
		if s.active[key] == mine {
			delete(s.active, key)
		}
		s.mu.Unlock()
		<-s.slots
		// Reported after the slot is free: whoever learns the transfer ended can start another.
		s.report(info)
	}()
}

func (s *Server) report(info TransferInfo) {
	if s.cfg.OnTransfer != nil {
		s.cfg.OnTransfer(info)
	}
}
