// Package webui is the web console that `ironwork serve` serves at /ui/: a fleet overview, a
// page per node and the operator's actions on nodes. Pages are rendered on the server with
// html/template from embedded files; a little JavaScript follows the events stream
// (/v1/ironwork/events) to show changes live. Every read and every action goes through the REST
// API's own handler, in process, with the browser's credentials: the console sees exactly what
// the API shows (secrets masked) and is refused exactly what the API refuses. It must not read
// the store or call the conductor itself.
package webui

import (
	"github.com/ironwork/ironwork/internal/policy"

	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/ironwork/ironwork/api"
)

// Prefix is where the console is served.
const Prefix = "/ui/"

//go:embed assets
var assets embed.FS

// Authenticator checks a request's credentials (httpapi.BasicAuth is one).
type Authenticator interface {
	Authenticate(r *http.Request) (policy.Principal, error)
}

// Options configures a Handler.
type Options struct {
	// API is the REST API's handler; the console calls it in process.
	API http.Handler
	// Auth checks credentials before any page is served; nil means none (as the API).
	Auth   Authenticator
	Logger *slog.Logger
	// EventsPath is the events stream the pages follow (httpapi.EventsPath).
	EventsPath string
}

// Handler serves the console.
type Handler struct {
	opts  Options
	log   *slog.Logger
	pages map[string]*template.Template
	mux   *http.ServeMux
}

// New returns the console's handler.
func New(opts Options) (*Handler, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{opts: opts, log: opts.Logger, pages: map[string]*template.Template{}, mux: http.NewServeMux()}
	for _, p := range []string{"fleet", "node"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "assets/layout.html", "assets/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("parse %s page: %w", p, err)
		}
		h.pages[p] = t
	}
	static, err := fs.Sub(assets, "assets/static")
	if err != nil {
		return nil, fmt.Errorf("static files: %w", err)
	}
	h.mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(static)))
	h.mux.HandleFunc("GET /ui/{$}", h.fleet)
	h.mux.HandleFunc("GET /ui/nodes/{ident}", h.node)
	h.mux.HandleFunc("POST /ui/nodes/{ident}/actions", h.action)
	h.mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, &api.Error{Status: http.StatusNotFound, Message: "No such page."})
	})
	return h, nil
}

// ServeHTTP checks the credentials and the request's origin, then serves the page.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'")
	w.Header().Set("Referrer-Policy", "same-origin")
	if h.opts.Auth != nil {
		if _, err := h.opts.Auth.Authenticate(r); err != nil {
			w.Header().Set("WWW-Authenticate", `Basic realm="Ironwork", charset="UTF-8"`)
			http.Error(w, "Authorization required", http.StatusUnauthorized)
			return
		}
	}
	h.mux.ServeHTTP(w, r)
}

// call sends one request to the API in process with the browser's credentials and decodes
// the JSON answer into out.
func (h *Handler) call(r *http.Request, method, path string, body, out any) error {
	var rd io.Reader = http.NoBody
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(r.Context(), method, path, rd)
	if err != nil {
		return fmt.Errorf("make %s %s: %w", method, path, err)
	}
	req.Host, req.RemoteAddr = r.Host, r.RemoteAddr
	req.Header.Set(api.VersionHeader, api.DefaultVersion)
	if a := r.Header.Get("Authorization"); a != "" {
		req.Header.Set("Authorization", a)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	h.opts.API.ServeHTTP(rec, req)
	if rec.status >= 400 {
		return &api.Error{Status: rec.status, Message: api.ErrorMessage(rec.body.Bytes())}
	}
	if out != nil && rec.body.Len() > 0 {
		if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
			return fmt.Errorf("decode %s %s: %w", method, path, err)
		}
	}
	return nil
}

// recorder keeps an in-process API answer.
type recorder struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}

// list reads every page of a collection at path (with its query), returning the items.
func (h *Handler) list(r *http.Request, path, key string) ([]map[string]any, error) {
	var all []map[string]any
	next := path
	for pages := 0; next != "" && pages < 1000; pages++ {
		var page map[string]json.RawMessage
		if err := h.call(r, http.MethodGet, next, nil, &page); err != nil {
			return nil, err
		}
		var items []map[string]any
		if err := json.Unmarshal(page[key], &items); err != nil {
			return nil, fmt.Errorf("decode %s: %w", key, err)
		}
		all = append(all, items...)
		next = ""
		var n string
		if raw, ok := page["next"]; ok && json.Unmarshal(raw, &n) == nil && len(items) > 0 {
			u, err := url.Parse(n)
			if err != nil {
				return nil, fmt.Errorf("bad next link %q: %w", n, err)
			}
			next = u.RequestURI()
		}
	}
	return all, nil
}

// csrfCookie holds the token every form of the console carries back (double submit); the
// origin checks in checkOrigin are the second line.
const csrfCookie = "ironwork_csrf"

// csrfToken returns the request's token, setting a new cookie when it has none.
func csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 64 {
		return c.Value
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	tok := hex.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: tok, Path: Prefix, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	return tok
}

// errForbidden is a refused cross-site or tokenless action.
var errForbidden = errors.New("forbidden")

// checkCSRF refuses an action that does not come from one of the console's own pages: the
// browser's Origin (or Sec-Fetch-Site) must be this site, and the form's token must match the
// cookie.
func checkCSRF(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return fmt.Errorf("%w: a request from another site (%s)", errForbidden, site)
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || o == "null" || !strings.EqualFold(u.Host, r.Host) {
			return fmt.Errorf("%w: origin %q is not this site", errForbidden, o)
		}
	}
	c, err := r.Cookie(csrfCookie)
	if err != nil || c.Value == "" {
		return fmt.Errorf("%w: no console token cookie: reload the page", errForbidden)
	}
	if subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf_token"))) != 1 {
		return fmt.Errorf("%w: the form's token does not match: reload the page", errForbidden)
	}
	return nil
}

// render writes a page.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, page string, data map[string]any) {
	data["CSRF"] = csrfToken(w, r)
	data["EventsPath"] = h.opts.EventsPath
	var buf bytes.Buffer
	if err := h.pages[page].Execute(&buf, data); err != nil {
		h.log.ErrorContext(r.Context(), "render console page", "page", page, "error", err)
		http.Error(w, "The page could not be rendered.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// fail shows an error page with the API's status and message.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := http.StatusInternalServerError, "The console could not read the API."
	var ae *api.Error
	if errors.As(err, &ae) {
		status, msg = ae.Status, ae.Message
	} else {
		h.log.ErrorContext(r.Context(), "console request", "path", r.URL.Path, "error", err)
	}
	h.render(w, r, status, "fleet", map[string]any{"Title": "Error", "Error": msg, "Failed": true})
}
