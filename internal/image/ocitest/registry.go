// Package ocitest is a small OCI distribution registry for tests: it serves manifests,
// indexes and blobs (with Range requests) from memory, and with a user and password set it
// demands bearer tokens obtained from its own token endpoint, as Docker Hub, Quay and
// Harbor do (the WWW-Authenticate challenge of the distribution API). It only serves pulls:
// content is added through its Go methods, not the push API. Test code only.
package ocitest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Media types of an ORAS-style artifact.
const (
	ManifestType = "application/vnd.oci.image.manifest.v1+json"
	IndexType    = "application/vnd.oci.image.index.v1+json"
	EmptyConfig  = "application/vnd.oci.empty.v1+json"
)

// Registry is the registry. Its methods are safe for concurrent use.
type Registry struct {
	// User and Password, when set, make every /v2/ request need a bearer token from /token,
	// which is given for these Basic credentials only.
	User, Password string

	mu        sync.Mutex
	blobs     map[string][]byte
	manifests map[string]stored // "repo@ref"
	tokens    map[string]bool

	srv *http.Server
	ln  net.Listener
	// Counters of what was asked, for tests that check traffic.
	TokenRequests, ManifestRequests, BlobGets atomic.Int64
}

type stored struct {
	mediaType string
	body      []byte
}

// New returns an empty registry; Start serves it.
func New() *Registry {
	return &Registry{blobs: map[string][]byte{}, manifests: map[string]stored{}, tokens: map[string]bool{}}
}

// Start serves the registry on ln until Close.
func (r *Registry) Start(ln net.Listener) {
	r.ln = ln
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go r.srv.Serve(ln)
}

// Host is host:port of the registry, as an oci:// URL names it.
func (r *Registry) Host() string { return r.ln.Addr().String() }

// Close stops the server.
func (r *Registry) Close() error { return r.srv.Close() }

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// Artifact describes one pushed file.
type Artifact struct {
	// DiskType is the manifest's "disktype" annotation (Ironic: raw, qcow2, ...), in the
	// index entry too when the artifact is listed in an index.
	DiskType string
	// Arch is the platform architecture of the index entry.
	Arch string
	// LayerMediaType defaults to application/octet-stream.
	LayerMediaType string
	// ExtraLayers adds layers (a container image has several).
	ExtraLayers int
}

// Push stores blob as a one-layer artifact and tags its manifest (unless tag is empty); it
// returns the manifest's digest.
func (r *Registry) Push(repo, tag string, blob []byte, a Artifact) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	mt := a.LayerMediaType
	if mt == "" {
		mt = "application/octet-stream"
	}
	empty := []byte("{}")
	r.blobs[digestOf(blob)] = blob
	r.blobs[digestOf(empty)] = empty
	layer := map[string]any{"mediaType": mt, "digest": digestOf(blob), "size": len(blob),
		"annotations": map[string]string{"org.opencontainers.image.title": "disk.img"}}
	layers := []any{layer}
	for i := 0; i < a.ExtraLayers; i++ {
		extra := []byte(fmt.Sprintf("layer %d", i))
		r.blobs[digestOf(extra)] = extra
		layers = append(layers, map[string]any{"mediaType": mt, "digest": digestOf(extra), "size": len(extra)})
	}
	m := map[string]any{"schemaVersion": 2, "mediaType": ManifestType, "artifactType": "application/vnd.unknown.artifact.v1",
		"config": map[string]any{"mediaType": EmptyConfig, "digest": digestOf(empty), "size": 2}, "layers": layers}
	if a.DiskType != "" {
		m["annotations"] = map[string]string{"disktype": a.DiskType}
	}
	body, _ := json.Marshal(m)
	d := digestOf(body)
	r.manifests[repo+"@"+d] = stored{ManifestType, body}
	if tag != "" {
		r.manifests[repo+"@"+tag] = stored{ManifestType, body}
	}
	return d
}

// IndexEntry is a manifest listed in an index.
type IndexEntry struct {
	Digest   string
	DiskType string
	Arch     string
}

// PushIndex tags an index listing manifests already pushed; it returns the index's digest.
func (r *Registry) PushIndex(repo, tag string, entries []IndexEntry) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ms []any
	for _, e := range entries {
		s := r.manifests[repo+"@"+e.Digest]
		d := map[string]any{"mediaType": ManifestType, "digest": e.Digest, "size": len(s.body)}
		if e.DiskType != "" {
			d["annotations"] = map[string]string{"disktype": e.DiskType}
		}
		if e.Arch != "" {
			d["platform"] = map[string]string{"architecture": e.Arch, "os": "linux"}
		}
		ms = append(ms, d)
	}
	body, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": IndexType, "manifests": ms})
	d := digestOf(body)
	r.manifests[repo+"@"+d] = stored{IndexType, body}
	r.manifests[repo+"@"+tag] = stored{IndexType, body}
	return d
}

// PutManifest stores any document under repo:tag with a media type (bad input for tests).
func (r *Registry) PutManifest(repo, tag, mediaType string, body []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.manifests[repo+"@"+tag] = stored{mediaType, body}
	r.manifests[repo+"@"+digestOf(body)] = stored{mediaType, body}
}

// DeleteBlob forgets a blob, as a registry whose garbage collector went too far.
func (r *Registry) DeleteBlob(digest string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.blobs, digest)
}

// ServeHTTP implements the pull side of the distribution API and the token endpoint.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path == "/token" {
		r.token(w, req)
		return
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		http.Error(w, "pull only", http.StatusMethodNotAllowed)
		return
	}
	p, ok := strings.CutPrefix(req.URL.Path, "/v2/")
	if !ok {
		http.NotFound(w, req)
		return
	}
	if !r.authorized(req) {
		repo, _, _ := strings.Cut(p, "/manifests/")
		repo, _, _ = strings.Cut(repo, "/blobs/")
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/token",service="ocitest",scope="repository:%s:pull"`, req.Host, repo))
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		return
	}
	if repo, ref, ok := strings.Cut(p, "/manifests/"); ok {
		r.ManifestRequests.Add(1)
		r.mu.Lock()
		s, found := r.manifests[repo+"@"+ref]
		r.mu.Unlock()
		if !found {
			writeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown")
			return
		}
		w.Header().Set("Content-Type", s.mediaType)
		w.Header().Set("Docker-Content-Digest", digestOf(s.body))
		http.ServeContent(w, req, "", time.Time{}, bytes.NewReader(s.body))
		return
	}
	if _, d, ok := strings.Cut(p, "/blobs/"); ok {
		r.mu.Lock()
		b, found := r.blobs[d]
		r.mu.Unlock()
		if !found {
			writeError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown")
			return
		}
		if req.Method == http.MethodGet {
			r.BlobGets.Add(1)
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Docker-Content-Digest", d)
		http.ServeContent(w, req, "", time.Time{}, bytes.NewReader(b))
		return
	}
	http.NotFound(w, req)
}

func (r *Registry) authorized(req *http.Request) bool {
	if r.User == "" {
		return true
	}
	t, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	r.mu.Lock()
	defer r.mu.Unlock()
	return ok && r.tokens[t]
}

func (r *Registry) token(w http.ResponseWriter, req *http.Request) {
	r.TokenRequests.Add(1)
	if r.User != "" {
		u, p, ok := req.BasicAuth()
		if !ok || u != r.User || p != r.Password {
			writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "bad credentials")
			return
		}
	}
	b := make([]byte, 16)
	rand.Read(b)
	t := hex.EncodeToString(b)
	r.mu.Lock()
	r.tokens[t] = true
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"token": t, "expires_in": 300})
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"errors": []any{map[string]string{"code": code, "message": msg}}})
}
