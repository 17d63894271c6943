package image

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// OCI media types the resolver reads.
const (
	MediaTypeOCIIndex        = "application/vnd.oci.image.index.v1+json"
	MediaTypeOCIManifest     = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeDockerList      = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerManifest  = "application/vnd.docker.distribution.manifest.v2+json"
	maxManifest              = 4 << 20
	ociAcceptManifestHeaders = MediaTypeOCIIndex + ", " + MediaTypeOCIManifest + ", " + MediaTypeDockerList + ", " + MediaTypeDockerManifest
)

// Errors of OCI resolution, for callers that branch (errors.Is).
var (
	// ErrNotDiskImage: the reference names something that is not a single-file artifact
	// (a container image of several layers, an unknown media type).
	ErrNotDiskImage = errors.New("not a disk image artifact")
	// ErrOCIAuth: the registry refused the credentials, or gave no token.
	ErrOCIAuth = errors.New("registry authentication failed")
	// ErrOCINotFound: the manifest, a matching artifact or its blob does not exist.
	ErrOCINotFound = errors.New("not found in the registry")
)

// OCIReference is a parsed oci://host[:port]/repository[:tag|@digest] URL.
type OCIReference struct {
	Host       string
	Repository string
	Tag        string // "latest" when neither a tag nor a digest is given
	Digest     string // "sha256:hex", when the URL names a manifest by digest
}

// String is the reference as an oci:// URL.
func (r OCIReference) String() string {
	if r.Digest != "" {
		return "oci://" + r.Host + "/" + r.Repository + "@" + r.Digest
	}
	return "oci://" + r.Host + "/" + r.Repository + ":" + r.Tag
}

// ref is what the registry's manifests endpoint takes: the digest, else the tag.
func (r OCIReference) ref() string {
	if r.Digest != "" {
		return r.Digest
	}
	return r.Tag
}

var (
	ociRepoRe = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
	ociTagRe  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
)

// IsOCI reports whether s is an oci:// image source.
func IsOCI(s string) bool { return strings.HasPrefix(strings.ToLower(strings.TrimSpace(s)), "oci://") }

// ParseOCIReference parses oci://host/path/name, oci://host/path/name:tag and
// oci://host/path/name@sha256:HEX (Ironic's URL forms; ORAS's ":@sha256:" is accepted too).
func ParseOCIReference(s string) (OCIReference, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), "oci://")
	if !ok {
		return OCIReference{}, fmt.Errorf("parse OCI reference %q: not an oci:// URL", s)
	}
	host, path, ok := strings.Cut(rest, "/")
	if !ok || host == "" || path == "" {
		return OCIReference{}, fmt.Errorf("parse OCI reference %q: want oci://host/repository[:tag|@digest]", s)
	}
	if strings.ContainsAny(host, "@?#") {
		return OCIReference{}, fmt.Errorf("parse OCI reference %q: bad registry host %q", s, host)
	}
	r := OCIReference{Host: host}
	if name, dg, found := strings.Cut(path, "@"); found {
		name = strings.TrimSuffix(name, ":")
		d, err := parseOCIDigest(dg)
		if err != nil {
			return OCIReference{}, fmt.Errorf("parse OCI reference %q: %w", s, err)
		}
		r.Repository, r.Digest = name, d.String()
	} else {
		r.Repository, r.Tag = path, "latest"
		if i := strings.LastIndex(path, ":"); i >= 0 {
			r.Repository, r.Tag = path[:i], path[i+1:]
			if !ociTagRe.MatchString(r.Tag) {
				return OCIReference{}, fmt.Errorf("parse OCI reference %q: bad tag %q", s, r.Tag)
			}
		}
	}
	if !ociRepoRe.MatchString(r.Repository) {
		return OCIReference{}, fmt.Errorf("parse OCI reference %q: bad repository name %q", s, r.Repository)
	}
	return r, nil
}

// parseOCIDigest parses "sha256:HEX" or "sha512:HEX", the digests a registry addresses by.
func parseOCIDigest(s string) (digest, error) {
	algo, value, ok := strings.Cut(s, ":")
	if !ok || (algo != SHA256 && algo != SHA512) {
		return digest{}, fmt.Errorf("digest %q: want sha256:HEX or sha512:HEX", s)
	}
	if strings.ToLower(value) != value {
		return digest{}, fmt.Errorf("digest %q: hex must be lower case", s)
	}
	return newDigest(algo, value)
}

// ociDescriptor is an OCI content descriptor.
type ociDescriptor struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	Annotations  map[string]string `json:"annotations"`
	Platform     *struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
	} `json:"platform"`
}

// ociManifest is an image manifest or an image index (manifest list), told apart by Kind.
type ociManifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *ociDescriptor    `json:"config"`
	Layers        []ociDescriptor   `json:"layers"`
	Manifests     []ociDescriptor   `json:"manifests"`
	Annotations   map[string]string `json:"annotations"`
}

// isIndex reports whether the document lists manifests rather than layers.
func (m ociManifest) isIndex() bool {
	return m.MediaType == MediaTypeOCIIndex || m.MediaType == MediaTypeDockerList || (m.MediaType == "" && m.Manifests != nil && m.Layers == nil)
}

// parseOCIManifest decodes a manifest or index as served with contentType (the
// Content-Type header, which wins over an empty mediaType field) and checks its shape.
func parseOCIManifest(body []byte, contentType string) (ociManifest, error) {
	var m ociManifest
	if err := json.Unmarshal(body, &m); err != nil {
		return ociManifest{}, fmt.Errorf("parse OCI manifest: %w", err)
	}
	if m.SchemaVersion != 2 {
		return ociManifest{}, fmt.Errorf("parse OCI manifest: schemaVersion %d, want 2", m.SchemaVersion)
	}
	ct, _, _ := strings.Cut(contentType, ";")
	ct = strings.TrimSpace(ct)
	if m.MediaType == "" {
		m.MediaType = ct
	}
	switch m.MediaType {
	case MediaTypeOCIIndex, MediaTypeDockerList:
		for _, d := range m.Manifests {
			if _, err := parseOCIDigest(d.Digest); err != nil {
				return ociManifest{}, fmt.Errorf("parse OCI index: manifest %w", err)
			}
		}
	case MediaTypeOCIManifest, MediaTypeDockerManifest, "":
		if m.isIndex() {
			return m, nil
		}
		for _, l := range m.Layers {
			if _, err := parseOCIDigest(l.Digest); err != nil {
				return ociManifest{}, fmt.Errorf("parse OCI manifest: layer %w", err)
			}
			if l.Size < 0 {
				return ociManifest{}, fmt.Errorf("parse OCI manifest: layer %s has a negative size", l.Digest)
			}
		}
	default:
		return ociManifest{}, fmt.Errorf("parse OCI manifest: %w: media type %q", ErrNotDiskImage, m.MediaType)
	}
	return m, nil
}

// containerLayer reports whether a layer media type is a container file system layer.
func containerLayer(mt string) bool {
	return strings.HasPrefix(mt, "application/vnd.oci.image.layer.") ||
		strings.HasPrefix(mt, "application/vnd.docker.image.rootfs.")
}

// OCIArtifact is a disk image found in a registry: the blob the deploy downloads.
type OCIArtifact struct {
	// Manifest is the oci:// URL of the chosen manifest, by digest.
	Manifest string
	// URL is the blob's http(s) URL on the registry.
	URL string
	// Digest is the blob's digest ("sha256:HEX"): the image's checksum.
	Digest string
	// Size is the blob's size from the manifest.
	Size int64
	// MediaType is the layer's media type; DiskFormat is "raw" or "qcow2" from the manifest's
	// disktype annotation, or "" when the registry does not say.
	MediaType, DiskFormat string
	// Authorization is the HTTP Authorization header value the blob needs ("Bearer ..." or
	// "Basic ..."), empty for an anonymous registry. It is a secret: never log it.
	Authorization string
}

// OCIResolver finds disk images in OCI registries (the distribution API over HTTPS).
type OCIResolver struct {
	// HTTPClient makes the requests; nil means http.DefaultClient.
	HTTPClient *http.Client
	// PlainHTTP lists registries (host:port) spoken to over plain HTTP, as container tools'
	// "insecure registries": a registry on a lab network or loopback.
	PlainHTTP []string
}

// OCIRequest is what to resolve.
type OCIRequest struct {
	Ref OCIReference
	// PullSecret is Ironic's image_pull_secret: the "auth" value of a docker config.json
	// (base64 of user:password) or "user:password", used when the registry asks for
	// credentials. Empty: anonymous.
	PullSecret string
	// CPUArch is the node's cpu_arch, matched against an index's platforms (x86_64 and
	// amd64, aarch64 and arm64 are the same).
	CPUArch string
	// PreferQcow2 puts qcow2 artifacts before raw ones in an index (Ironic does so for
	// image_download_source local).
	PreferQcow2 bool
}

// ociSession is one resolution: the registry's base URL and the Authorization it took.
type ociSession struct {
	r      *OCIResolver
	req    OCIRequest
	base   string
	auth   string
	client *http.Client
}

// Resolve finds the disk image req names: the manifest (through the index for a tag that
// lists several), its single layer, and checks the blob exists. It touches nothing on disk.
func (o *OCIResolver) Resolve(ctx context.Context, req OCIRequest) (OCIArtifact, error) {
	s := &ociSession{r: o, req: req, client: o.HTTPClient}
	if s.client == nil {
		s.client = http.DefaultClient
	}
	scheme := "https"
	if slices.Contains(o.PlainHTTP, req.Ref.Host) {
		scheme = "http"
	}
	s.base = scheme + "://" + req.Ref.Host + "/v2/" + req.Ref.Repository
	m, digestOf, err := s.manifest(ctx, req.Ref.ref())
	if err != nil {
		return OCIArtifact{}, err
	}
	chosen := digestOf
	var disktype string
	if m.isIndex() {
		d, err := pickFromIndex(m, req)
		if err != nil {
			return OCIArtifact{}, fmt.Errorf("%s: %w", req.Ref, err)
		}
		disktype = d.Annotations["disktype"]
		if m, chosen, err = s.manifest(ctx, d.Digest); err != nil {
			return OCIArtifact{}, err
		}
		if m.isIndex() {
			return OCIArtifact{}, fmt.Errorf("%s: %w: an index inside an index", req.Ref, ErrNotDiskImage)
		}
	}
	layer, err := artifactLayer(m)
	if err != nil {
		return OCIArtifact{}, fmt.Errorf("%s: %w", req.Ref, err)
	}
	if disktype == "" {
		disktype = m.Annotations["disktype"]
	}
	a := OCIArtifact{
		Manifest: OCIReference{Host: req.Ref.Host, Repository: req.Ref.Repository, Digest: chosen}.String(),
		URL:      s.base + "/blobs/" + layer.Digest, Digest: layer.Digest, Size: layer.Size,
		MediaType: layer.MediaType, DiskFormat: diskFormatOf(disktype), Authorization: s.auth,
	}
	if err := s.checkBlob(ctx, a.URL); err != nil {
		return OCIArtifact{}, fmt.Errorf("%s: blob %s: %w", req.Ref, layer.Digest, err)
	}
	return a, nil
}

// diskFormatOf maps Ironic's disktype annotation values to a disk format.
func diskFormatOf(disktype string) string {
	switch disktype {
	case "qcow2", "qemu":
		return "qcow2"
	case "raw", "applehv":
		return "raw"
	}
	return ""
}

// artifactLayer is the one layer of an artifact manifest; a container image is refused.
func artifactLayer(m ociManifest) (ociDescriptor, error) {
	if len(m.Layers) != 1 {
		return ociDescriptor{}, fmt.Errorf("%w: the manifest has %d layers, a disk image artifact has exactly 1", ErrNotDiskImage, len(m.Layers))
	}
	l := m.Layers[0]
	if containerLayer(l.MediaType) {
		return ociDescriptor{}, fmt.Errorf("%w: its layer is a container file system (%s)", ErrNotDiskImage, l.MediaType)
	}
	if m.Config != nil && m.Config.MediaType == "application/vnd.docker.container.image.v1+json" {
		return ociDescriptor{}, fmt.Errorf("%w: it is a container image (config %s)", ErrNotDiskImage, m.Config.MediaType)
	}
	return l, nil
}

// pickFromIndex chooses a manifest of an index as Ironic does: by disktype annotation
// (raw first, or qcow2 first with PreferQcow2; entries without one last), skipping other
// CPU architectures.
func pickFromIndex(m ociManifest, req OCIRequest) (ociDescriptor, error) {
	prio := map[string]int{"raw": 1, "applehv": 2, "qcow2": 3, "qemu": 4}
	if req.PreferQcow2 {
		prio = map[string]int{"qcow2": 1, "qemu": 2, "raw": 3, "applehv": 4}
	}
	arches := []string{req.CPUArch}
	switch req.CPUArch {
	case "x86_64", "amd64":
		arches = []string{"x86_64", "amd64"}
	case "aarch64", "arm64":
		arches = []string{"aarch64", "arm64"}
	}
	var cands []ociDescriptor
	for _, d := range m.Manifests {
		if d.Platform != nil && d.Platform.Architecture != "" && req.CPUArch != "" && !slices.Contains(arches, d.Platform.Architecture) {
			continue
		}
		cands = append(cands, d)
	}
	rank := func(d ociDescriptor) int {
		if p, ok := prio[d.Annotations["disktype"]]; ok {
			return p
		}
		return 100
	}
	sort.SliceStable(cands, func(i, j int) bool { return rank(cands[i]) < rank(cands[j]) })
	if len(cands) == 0 {
		return ociDescriptor{}, fmt.Errorf("%w: no manifest in the index matches cpu_arch %q", ErrOCINotFound, req.CPUArch)
	}
	return cands[0], nil
}

// manifest fetches a manifest or index by tag or digest, verifying a digest reference
// against the bytes; it returns the document and its digest.
func (s *ociSession) manifest(ctx context.Context, ref string) (ociManifest, string, error) {
	u := s.base + "/manifests/" + ref
	resp, err := s.do(ctx, http.MethodGet, u, ociAcceptManifestHeaders)
	if err != nil {
		return ociManifest{}, "", fmt.Errorf("%s: manifest %s: %w", s.req.Ref, ref, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifest+1))
	if err != nil {
		return ociManifest{}, "", fmt.Errorf("%s: read manifest %s: %w", s.req.Ref, ref, unwrapURLError(err))
	}
	if len(body) > maxManifest {
		return ociManifest{}, "", fmt.Errorf("%s: manifest %s is larger than %d bytes", s.req.Ref, ref, maxManifest)
	}
	sum := sha256.Sum256(body)
	got := "sha256:" + hex.EncodeToString(sum[:])
	if strings.HasPrefix(ref, "sha") {
		if strings.HasPrefix(ref, SHA512+":") {
			s5 := sha512.Sum512(body)
			got = "sha512:" + hex.EncodeToString(s5[:])
		}
		if got != ref {
			return ociManifest{}, "", fmt.Errorf("%s: manifest digest mismatch: asked for %s, got %s", s.req.Ref, ref, got)
		}
	}
	m, err := parseOCIManifest(body, resp.Header.Get("Content-Type"))
	if err != nil {
		return ociManifest{}, "", fmt.Errorf("%s: %w", s.req.Ref, err)
	}
	return m, got, nil
}

// checkBlob makes sure the blob exists (HEAD), so a missing blob fails before any disk
// is touched.
func (s *ociSession) checkBlob(ctx context.Context, u string) error {
	resp, err := s.do(ctx, http.MethodHead, u, "")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// do makes a request, answering a 401's challenge once (a bearer token from the realm, or
// basic credentials), and turns statuses into errors.
func (s *ociSession) do(ctx context.Context, method, u, accept string) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, u, nil)
		if err != nil {
			return nil, err
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		if s.auth != "" {
			req.Header.Set("Authorization", s.auth)
		}
		resp, err := s.client.Do(req)
		if err != nil {
			return nil, unwrapURLError(err)
		}
		switch {
		case resp.StatusCode == http.StatusOK:
			return resp, nil
		case resp.StatusCode == http.StatusUnauthorized && attempt == 0:
			challenge := resp.Header.Get("WWW-Authenticate")
			drain(resp)
			if err := s.authenticate(ctx, challenge); err != nil {
				return nil, err
			}
			continue
		}
		drain(resp)
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return nil, fmt.Errorf("%w: %s %s answered %s", ErrOCIAuth, method, redactString(u), resp.Status)
		case http.StatusNotFound:
			return nil, fmt.Errorf("%w: %s %s answered %s", ErrOCINotFound, method, redactString(u), resp.Status)
		}
		return nil, &HTTPStatusError{Method: method, URL: redactString(u), StatusCode: resp.StatusCode, Status: resp.Status}
	}
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
}

func redactString(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	return redact(u)
}

// basicCredentials turns a pull secret into a Basic header value: the secret is either
// already base64 of user:password (docker config.json's auth) or user:password itself.
func basicCredentials(secret string) string {
	if b, err := base64.StdEncoding.DecodeString(secret); err == nil && strings.Contains(string(b), ":") {
		return "Basic " + secret
	}
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(secret))
}

// authenticate answers a WWW-Authenticate challenge: Basic with the pull secret, or
// Bearer with a token from the challenge's realm (with the pull secret as Basic credentials
// when there is one, anonymously otherwise).
func (s *ociSession) authenticate(ctx context.Context, challenge string) error {
	scheme, params := parseChallenge(challenge)
	switch scheme {
	case "basic":
		if s.req.PullSecret == "" {
			return fmt.Errorf("%w: the registry wants credentials and no image_pull_secret is set", ErrOCIAuth)
		}
		s.auth = basicCredentials(s.req.PullSecret)
		return nil
	case "bearer":
	default:
		return fmt.Errorf("%w: the registry answered 401 with an unsupported challenge %q", ErrOCIAuth, scheme)
	}
	realm, err := url.Parse(params["realm"])
	if err != nil || (realm.Scheme != "https" && realm.Scheme != "http") || realm.Host == "" {
		return fmt.Errorf("%w: the registry's token realm %q is not an http(s) URL", ErrOCIAuth, params["realm"])
	}
	q := realm.Query()
	if v := params["service"]; v != "" {
		q.Set("service", v)
	}
	scope := params["scope"]
	if scope == "" {
		scope = "repository:" + s.req.Ref.Repository + ":pull"
	}
	q.Set("scope", scope)
	realm.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrOCIAuth, err)
	}
	if s.req.PullSecret != "" {
		req.Header.Set("Authorization", basicCredentials(s.req.PullSecret))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("get registry token: %w", unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: the token service %s answered %s", ErrOCIAuth, redact(realm), resp.Status)
	}
	var tok struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tok); err != nil {
		return fmt.Errorf("%w: the token service's answer: %w", ErrOCIAuth, err)
	}
	t := tok.Token
	if t == "" {
		t = tok.AccessToken
	}
	if t == "" {
		return fmt.Errorf("%w: the token service gave no token", ErrOCIAuth)
	}
	s.auth = "Bearer " + t
	return nil
}

// parseChallenge splits a WWW-Authenticate value: `Bearer realm="...",service="..."`.
func parseChallenge(v string) (scheme string, params map[string]string) {
	v = strings.TrimSpace(v)
	scheme, rest, _ := strings.Cut(v, " ")
	params = map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; {
		k, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		k = strings.ToLower(strings.TrimSpace(k))
		var val string
		if strings.HasPrefix(after, `"`) {
			end := strings.Index(after[1:], `"`)
			if end < 0 {
				break
			}
			val, rest = after[1:1+end], after[2+end:]
		} else {
			val, rest, _ = strings.Cut(after, ",")
			rest = "," + rest
		}
		params[k] = val
		rest = strings.TrimLeft(strings.TrimSpace(rest), ",")
		rest = strings.TrimSpace(rest)
	}
	return strings.ToLower(scheme), params
}
