package image_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ironwork/ironwork/internal/image"
	"github.com/ironwork/ironwork/internal/image/ocitest"
)

func startRegistry(t *testing.T, user, password string) *ocitest.Registry {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := ocitest.New()
	r.User, r.Password = user, password
	r.Start(ln)
	t.Cleanup(func() { r.Close() })
	return r
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func TestParseOCIReference(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	for in, want := range map[string]image.OCIReference{
		"oci://quay.io/org/img":              {Host: "quay.io", Repository: "org/img", Tag: "latest"},
		"oci://127.0.0.1:5000/org/img:v1.2":  {Host: "127.0.0.1:5000", Repository: "org/img", Tag: "v1.2"},
		"oci://reg.example/a/b/c@" + d:       {Host: "reg.example", Repository: "a/b/c", Digest: d},
		"oci://reg.example/a/b:@" + d:        {Host: "reg.example", Repository: "a/b", Digest: d},
		"oci://localhost:5000/disk-images_1": {Host: "localhost:5000", Repository: "disk-images_1", Tag: "latest"},
	} {
		got, err := image.ParseOCIReference(in)
		if err != nil || got != want {
			t.Errorf("ParseOCIReference(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"http://quay.io/a", "oci://", "oci://host", "oci:///repo", "oci://h/Upper", "oci://h/a:bad/tag",
		"oci://h/a@md5:" + strings.Repeat("a", 32), "oci://h/a@sha256:abc", "oci://h/a@sha256:" + strings.Repeat("AB", 32), "oci://h@x/a"} {
		if _, err := image.ParseOCIReference(bad); err == nil {
			t.Errorf("ParseOCIReference(%q): no error", bad)
		}
	}
}

// TestOCIResolve resolves artifacts from a registry on loopback that demands bearer tokens:
// a tag, a digest, an index by disktype and architecture, and every refusal before any
// download.
func TestOCIResolve(t *testing.T) {
	reg := startRegistry(t, "robot", "s3cret")
	ctx := context.Background()
	o := &image.OCIResolver{PlainHTTP: []string{reg.Host()}}
	secret := base64.StdEncoding.EncodeToString([]byte("robot:s3cret"))
	raw := bytes.Repeat([]byte("raw disk "), 1000)
	qcow := bytes.Repeat([]byte("qcow disk "), 1000)
	arm := bytes.Repeat([]byte("arm disk "), 1000)
	rawM := reg.Push("images/disk", "raw", raw, ocitest.Artifact{DiskType: "raw"})
	qcowM := reg.Push("images/disk", "qcow2", qcow, ocitest.Artifact{DiskType: "qcow2"})
	armM := reg.Push("images/disk", "", arm, ocitest.Artifact{DiskType: "raw"})
	reg.PushIndex("images/disk", "multi", []ocitest.IndexEntry{
		{Digest: qcowM, DiskType: "qcow2", Arch: "amd64"}, {Digest: armM, DiskType: "raw", Arch: "arm64"}, {Digest: rawM, DiskType: "raw", Arch: "amd64"}})
	ref := func(s string) image.OCIReference {
		r, err := image.ParseOCIReference("oci://" + reg.Host() + "/" + s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	t.Run("tag, with a docker config.json secret", func(t *testing.T) {
		a, err := o.Resolve(ctx, image.OCIRequest{Ref: ref("images/disk:raw"), PullSecret: secret})
		if err != nil {
			t.Fatal(err)
		}
		if a.Digest != sha(raw) || a.Size != int64(len(raw)) || a.DiskFormat != "raw" || !strings.HasPrefix(a.Authorization, "Bearer ") ||
			a.URL != "http://"+reg.Host()+"/v2/images/disk/blobs/"+sha(raw) || a.Manifest != "oci://"+reg.Host()+"/images/disk@"+rawM {
			t.Fatalf("artifact %+v", a)
		}
	})
	t.Run("digest, with user:password", func(t *testing.T) {
		a, err := o.Resolve(ctx, image.OCIRequest{Ref: ref("images/disk@" + qcowM), PullSecret: "robot:s3cret"})
		if err != nil || a.Digest != sha(qcow) || a.DiskFormat != "qcow2" {
			t.Fatalf("artifact %+v, %v", a, err)
		}
	})
	t.Run("index: raw first for http, qcow2 first for local, architecture", func(t *testing.T) {
		for _, c := range []struct {
			arch  string
			qcow2 bool
			want  []byte
		}{{"x86_64", false, raw}, {"x86_64", true, qcow}, {"aarch64", false, arm}, {"", true, qcow}} {
			a, err := o.Resolve(ctx, image.OCIRequest{Ref: ref("images/disk:multi"), PullSecret: secret, CPUArch: c.arch, PreferQcow2: c.qcow2})
			if err != nil || a.Digest != sha(c.want) {
				t.Errorf("arch %q qcow2 %v: %+v, %v", c.arch, c.qcow2, a, err)
			}
		}
		_, err := o.Resolve(ctx, image.OCIRequest{Ref: ref("images/disk:multi"), PullSecret: secret, CPUArch: "ppc64le"})
		if !errors.Is(err, image.ErrOCINotFound) {
			t.Errorf("no manifest for ppc64le: %v", err)
		}
	})

	before := reg.BlobGets.Load()
	reg.Push("images/app", "container", []byte("rootfs"), ocitest.Artifact{LayerMediaType: "application/vnd.oci.image.layer.v1.tar+gzip"})
	reg.Push("images/app", "layers", []byte("rootfs"), ocitest.Artifact{ExtraLayers: 2})
	reg.PutManifest("images/app", "helm", "application/vnd.cncf.helm.config.v1+json", []byte(`{"schemaVersion": 2, "mediaType": "application/vnd.cncf.helm.config.v1+json"}`))
	gone := reg.Push("images/app", "gone", []byte("deleted blob"), ocitest.Artifact{DiskType: "raw"})
	_ = gone
	reg.DeleteBlob(sha([]byte("deleted blob")))
	for name, c := range map[string]struct {
		ref, secret string
		want        error
	}{
		"container layer":   {"images/app:container", secret, image.ErrNotDiskImage},
		"several layers":    {"images/app:layers", secret, image.ErrNotDiskImage},
		"other media type":  {"images/app:helm", secret, image.ErrNotDiskImage},
		"missing blob":      {"images/app:gone", secret, image.ErrOCINotFound},
		"missing tag":       {"images/app:nope", secret, image.ErrOCINotFound},
		"wrong password":    {"images/disk:raw", "robot:wrong", image.ErrOCIAuth},
		"no secret":         {"images/disk:raw", "", image.ErrOCIAuth},
		"digest not stored": {"images/disk@sha256:" + strings.Repeat("0", 64), secret, image.ErrOCINotFound},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := o.Resolve(ctx, image.OCIRequest{Ref: ref(c.ref), PullSecret: c.secret})
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), secret) {
				t.Fatalf("error %q carries the secret", err)
			}
			t.Logf("%s: %v", name, err)
		})
	}
	if n := reg.BlobGets.Load(); n != before {
		t.Fatalf("resolution downloaded %d blobs; it must only look", n-before)
	}
}

// TestOCIThroughTheCache: the conductor's cache downloads a blob with the resolver's token
// and verifies it against the digest (image_download_source local).
func TestOCIThroughTheCache(t *testing.T) {
	reg := startRegistry(t, "robot", "s3cret")
	blob := bytes.Repeat([]byte{1, 2, 3, 4}, 1<<16)
	reg.Push("img", "v1", blob, ocitest.Artifact{DiskType: "raw"})
	ref, _ := image.ParseOCIReference("oci://" + reg.Host() + "/img:v1")
	a, err := (&image.OCIResolver{PlainHTTP: []string{reg.Host()}}).Resolve(context.Background(), image.OCIRequest{Ref: ref, PullSecret: "robot:s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := image.New(image.Config{Dir: filepath.Join(t.TempDir(), "cache")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(context.Background(), image.Source{URL: a.URL, Checksum: a.Digest}); err == nil {
		t.Fatal("a blob fetched without the token")
	}
	p, err := c.Fetch(context.Background(), image.Source{URL: a.URL, Checksum: a.Digest, Authorization: a.Authorization})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(p) != c.Dir() {
		t.Fatalf("master at %s", p)
	}
}

// FuzzOCIManifest: manifests come from remote registries.
func FuzzOCIManifest(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[{"mediaType":"application/octet-stream","digest":"sha256:`+strings.Repeat("a", 64)+`","size":3}]}`), "")
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"digest":"sha256:`+strings.Repeat("b", 64)+`","annotations":{"disktype":"raw"},"platform":{"architecture":"amd64"}}]}`), image.MediaTypeOCIIndex)
	f.Add([]byte(`{"schemaVersion":1}`), "application/json")
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		image.ParseOCIManifestForFuzz(body, contentType)
	})
}

// FuzzParseOCIReference: references come from users.
func FuzzParseOCIReference(f *testing.F) {
	f.Add("oci://quay.io/org/img:tag")
	f.Add("oci://h:5000/a/b@sha256:" + strings.Repeat("a", 64))
	f.Fuzz(func(t *testing.T, s string) {
		r, err := image.ParseOCIReference(s)
		if err != nil {
			return
		}
		back, err := image.ParseOCIReference(r.String())
		if err != nil || back != r {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, r, r.String(), back, err)
		}
	})
}
