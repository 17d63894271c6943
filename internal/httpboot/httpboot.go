// Package httpboot is the HTTP boot server: it serves nodes their iPXE scripts (and GRUB
// configurations, for arm64 UEFI), rendered for the MAC address that asks, and the files under the boot root (iPXE binaries, deploy kernels
// and ramdisks, images) with Range requests and exact lengths. It only reads: files outside
// the boot root, directories and anything but GET and HEAD are refused.
package httpboot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"strings"
	"time"
)

// Scripts renders iPXE scripts.
type Scripts interface {
	// Script is the script of the node owning mac.
	Script(ctx context.Context, mac string) (string, error)
	// ChainScript is the script for an iPXE that knows no script URL yet.
	ChainScript() string
	// GrubConfig is the GRUB configuration of the node owning mac (arm64 UEFI clients,
	// which boot GRUB instead of iPXE).
	GrubConfig(ctx context.Context, mac string) (string, error)
}

// Server is the HTTP boot server.
type Server struct {
	root    *os.Root
	scripts Scripts
	log     *slog.Logger
	// OnRequest, when set before Serve, is called after each answer with its HTTP status.
	// It must be safe for concurrent use and quick.
	OnRequest func(status int)
}

// New serves the files below dir and the scripts of scripts.
func New(dir string, scripts Scripts, log *slog.Logger) (*Server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create boot root: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open boot root: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{root: root, scripts: scripts, log: log}, nil
}

// Close releases the boot root.
func (s *Server) Close() error { return s.root.Close() }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.OnRequest != nil {
		sw := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() { s.OnRequest(sw.status) }()
		w = sw
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := path.Clean("/" + r.URL.Path)
	switch {
	case p == "/boot.ipxe":
		s.script(w, r, s.scripts.ChainScript())
		return
	case strings.HasPrefix(p, "/boot/") && strings.HasSuffix(p, ".ipxe"):
		s.nodeScript(w, r, strings.TrimSuffix(strings.TrimPrefix(p, "/boot/"), ".ipxe"))
		return
	case strings.HasPrefix(p, "/boot/") && strings.HasSuffix(p, ".grub"):
		s.grubConfig(w, r, strings.TrimSuffix(strings.TrimPrefix(p, "/boot/"), ".grub"))
		return
	}
	s.file(w, r, strings.TrimPrefix(p, "/"))
}

func (s *Server) script(w http.ResponseWriter, r *http.Request, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	http.ServeContent(w, r, "", time.Time{}, strings.NewReader(body))
}

func (s *Server) nodeScript(w http.ResponseWriter, r *http.Request, macText string) {
	if macText == "unknown" {
		// What DHCP hands a machine it does not know when discovery is on.
		body, err := s.scripts.Script(r.Context(), macText)
		if err != nil {
			http.Error(w, "no script for unknown machines", http.StatusNotFound)
			return
		}
		s.script(w, r, body)
		return
	}
	mac, err := net.ParseMAC(strings.ReplaceAll(macText, "-", ":"))
	if err != nil || len(mac) != 6 {
		s.log.Debug("bad MAC in script request", "path", r.URL.Path, "client", r.RemoteAddr)
		http.Error(w, fmt.Sprintf("%q is not a MAC address", macText), http.StatusBadRequest)
		return
	}
	body, err := s.scripts.Script(r.Context(), mac.String())
	if err != nil {
		s.log.Error("render iPXE script", "mac", mac.String(), "error", err)
		http.Error(w, "the script could not be rendered; see the server log", http.StatusInternalServerError)
		return
	}
	s.log.Info("iPXE script served", "mac", mac.String(), "client", r.RemoteAddr)
	s.script(w, r, body)
}

func (s *Server) grubConfig(w http.ResponseWriter, r *http.Request, macText string) {
	mac, err := net.ParseMAC(strings.ReplaceAll(macText, "-", ":"))
	if err != nil || len(mac) != 6 {
		s.log.Debug("bad MAC in GRUB configuration request", "path", r.URL.Path, "client", r.RemoteAddr)
		http.Error(w, fmt.Sprintf("%q is not a MAC address", macText), http.StatusBadRequest)
		return
	}
	body, err := s.scripts.GrubConfig(r.Context(), mac.String())
	if err != nil {
		s.log.Error("render GRUB configuration", "mac", mac.String(), "error", err)
		http.Error(w, "the configuration could not be rendered; see the server log", http.StatusInternalServerError)
		return
	}
	s.log.Info("GRUB configuration served", "mac", mac.String(), "client", r.RemoteAddr)
	s.script(w, r, body)
}

func (s *Server) file(w http.ResponseWriter, r *http.Request, name string) {
	if name == "" || name == "." {
		http.NotFound(w, r)
		return
	}
	f, err := s.root.Open(name)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("boot file refused", "file", name, "client", r.RemoteAddr, "error", err)
		}
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	start := time.Now()
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", st.ModTime(), f)
	if r.Method == http.MethodGet && r.Header.Get("Range") == "" {
		s.log.Info("boot file served", "file", name, "bytes", st.Size(), "client", r.RemoteAddr,
			"seconds", time.Since(start).Seconds())
	}
}

// Serve answers on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve HTTP boot: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
	}
	return nil
}

// statusRecorder remembers the status of an answer.
type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusRecorder) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// ReadFrom keeps the sendfile path of the underlying writer for large files.
func (w *statusRecorder) ReadFrom(r io.Reader) (int64, error) {
	w.wrote = true
	return io.Copy(w.ResponseWriter, r)
}
