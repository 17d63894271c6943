package direct

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/agent"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/image"
	"github.com/ironwork/ironwork/internal/image/ocitest"
)

// cacheImages is LocalImages over a real image cache and a real HTTP server of its root, as
// the server wires it.
type cacheImages struct {
	cache *image.Cache
	root  string
	url   string
}

func (c cacheImages) Serve(ctx context.Context, node string, src image.Source) (string, error) {
	if err := c.cache.Link(ctx, src, filepath.Join(c.root, "agent_images", node, "disk_image")); err != nil {
		return "", err
	}
	return c.url + "/agent_images/" + node + "/disk_image", nil
}

func (c cacheImages) Remove(_ context.Context, node string) error {
	return os.RemoveAll(filepath.Join(c.root, "agent_images", node))
}

func newCacheImages(t *testing.T) cacheImages {
	t.Helper()
	dir := t.TempDir()
	cache, err := image.New(image.Config{Dir: filepath.Join(dir, "cache")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "boot")
	os.MkdirAll(root, 0o755)
	srv := httptest.NewServer(http.FileServer(http.Dir(root)))
	t.Cleanup(srv.Close)
	return cacheImages{cache: cache, root: root, url: srv.URL}
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// writeWithAgent has the agent's image writer do what image_info says, onto a file.
func writeWithAgent(t *testing.T, params map[string]any) ([]byte, error) {
	t.Helper()
	info := params["image_info"].(map[string]any)
	target := filepath.Join(t.TempDir(), "disk")
	if err := os.WriteFile(target, make([]byte, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	var auth string
	if a, _ := info["image_request_authorization"].(string); a != "" {
		b, err := base64.StdEncoding.DecodeString(a)
		if err != nil {
			t.Fatal(err)
		}
		auth = string(b)
	}
	sum := info["checksum"].(string)
	_, err := agent.WriteImage(context.Background(), agent.ImageRequest{URL: info["urls"].([]string)[0], Checksum: sum,
		DiskFormat: fmt.Sprint(info["disk_format"]), Authorization: auth}, target, nil)
	b, _ := os.ReadFile(target)
	return b, err
}

func nodeWith(ii, di map[string]any) *ironwork.Node {
	return &ironwork.Node{UUID: "0b5c8f1e-1111-4222-8333-444455556666", InstanceInfo: ii, DriverInfo: di,
		Properties: ironwork.JSONObject{"cpu_arch": "x86_64"}}
}

// TestImageSources resolves every kind of image source the way a deploy does and has the
// agent's writer download the result: checksum files by URL (http and file), the conductor's
// cache (local), and an OCI registry with token auth; bad input fails before any write.
func TestImageSources(t *testing.T) {
	img := bytes.Repeat([]byte("IRONWORK-IMAGE-"), 20000)
	sum := hexSum(img)
	other := strings.Repeat("f", 64)
	var gets int
	files := http.NewServeMux()
	files.HandleFunc("/images/disk.img", func(w http.ResponseWriter, r *http.Request) {
		gets++
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(img))
	})
	files.HandleFunc("/images/SHA256SUMS", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s  other.img\n%s *disk.img\n", other, sum)
	})
	files.HandleFunc("/images/OTHERSUMS", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s  other.img\n", sum)
	})
	hs := httptest.NewServer(files)
	defer hs.Close()
	allowed := t.TempDir()
	os.WriteFile(filepath.Join(allowed, "disk.img"), img, 0o644)
	os.WriteFile(filepath.Join(allowed, "SHA256SUMS"), []byte(sum+"  disk.img\n"), 0o644)
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "disk.img"), img, 0o644)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := ocitest.New()
	reg.User, reg.Password = "u", "p"
	reg.Start(ln)
	defer reg.Close()
	reg.Push("disks/test", "v1", img, ocitest.Artifact{DiskType: "raw"})

	local := newCacheImages(t)
	cfg := testConfig()
	cfg.LocalImages, cfg.FileDirs = local, []string{allowed}
	cfg.OCI = &image.OCIResolver{PlainHTTP: []string{reg.Host()}}
	d := New(cfg, nil)
	ctx := context.Background()

	good := []struct {
		name      string
		ii, di    map[string]any
		wantLocal bool
	}{
		{"http with a checksum file", map[string]any{"image_source": hs.URL + "/images/disk.img", "image_checksum": hs.URL + "/images/SHA256SUMS"}, nil, false},
		{"http with os_hash", map[string]any{"image_source": hs.URL + "/images/disk.img", "image_os_hash_algo": "sha256", "image_os_hash_value": sum}, nil, false},
		{"local from instance_info", map[string]any{"image_source": hs.URL + "/images/disk.img", "image_checksum": "sha256:" + sum, "image_download_source": "local"}, nil, true},
		{"local from driver_info", map[string]any{"image_source": hs.URL + "/images/disk.img", "image_checksum": hs.URL + "/images/SHA256SUMS"}, map[string]any{"image_download_source": "local"}, true},
		{"file image with a file checksum", map[string]any{"image_source": "file://" + allowed + "/disk.img", "image_checksum": "file://" + allowed + "/SHA256SUMS"}, nil, true},
		{"oci over http", map[string]any{"image_source": "oci://" + reg.Host() + "/disks/test:v1", "image_pull_secret": "u:p"}, nil, false},
		{"oci through the cache", map[string]any{"image_source": "oci://" + reg.Host() + "/disks/test:v1", "image_pull_secret": "u:p", "image_download_source": "local"}, nil, true},
	}
	for _, c := range good {
		t.Run(c.name, func(t *testing.T) {
			n := nodeWith(c.ii, c.di)
			if err := d.Validate(ctx, &conductor.Task{Node: n}); err != nil {
				t.Fatalf("validate: %v", err)
			}
			res, err := d.resolveImage(ctx, n)
			if err != nil {
				t.Fatal(err)
			}
			params, err := imageParams(n, res)
			if err != nil {
				t.Fatal(err)
			}
			info := params["image_info"].(map[string]any)
			if info["os_hash_value"] != sum || info["os_hash_algo"] != "sha256" {
				t.Fatalf("image_info %v: want the image's sha256", info)
			}
			url := info["urls"].([]string)[0]
			if got := strings.HasPrefix(url, local.url+"/agent_images/"); got != c.wantLocal {
				t.Fatalf("agent downloads %s; local %v, want %v", url, got, c.wantLocal)
			}
			_, hasAuth := info["image_request_authorization"]
			if hasAuth != (strings.HasPrefix(c.ii["image_source"].(string), "oci://") && !c.wantLocal) {
				t.Fatalf("image_request_authorization present: %v", hasAuth)
			}
			disk, err := writeWithAgent(t, params)
			if err != nil {
				t.Fatalf("agent write from %s: %v", url, err)
			}
			if !bytes.Equal(disk[:len(img)], img) {
				t.Fatal("the written disk is not the image")
			}
			if err := d.removeLocalImage(ctx, n.UUID); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(local.root, "agent_images", n.UUID)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the served image outlived its removal: %v", err)
			}
		})
	}

	bad := []struct {
		name     string
		ii       map[string]any
		validate bool // the error shows at validation already
		want     string
	}{
		{"checksum file without the image's line", map[string]any{"image_source": hs.URL + "/images/disk.img", "image_checksum": hs.URL + "/images/OTHERSUMS"}, false, `no line for "disk.img"`},
		{"checksum file missing", map[string]any{"image_source": hs.URL + "/images/disk.img", "image_checksum": hs.URL + "/images/NOSUMS"}, false, "404"},
		{"file image outside the allowed paths", map[string]any{"image_source": "file://" + outside + "/disk.img", "image_checksum": sum}, true, "outside the directories"},
		{"file checksum outside the allowed paths", map[string]any{"image_source": hs.URL + "/images/disk.img", "image_checksum": "file://" + outside + "/disk.img"}, true, "outside the directories"},
		{"swift", map[string]any{"image_source": hs.URL + "/images/disk.img", "image_checksum": sum, "image_download_source": "swift"}, true, "swift is not supported"},
		{"unknown download source", map[string]any{"image_source": hs.URL + "/images/disk.img", "image_checksum": sum, "image_download_source": "ftp"}, true, "not one of http, local"},
		{"ftp image", map[string]any{"image_source": "ftp://example/disk.img", "image_checksum": sum}, true, "must be an http(s) URL"},
		{"bad oci reference", map[string]any{"image_source": "oci://" + reg.Host()}, true, "parse OCI reference"},
		{"oci without credentials", map[string]any{"image_source": "oci://" + reg.Host() + "/disks/test:v1"}, false, "registry authentication failed"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			before := gets
			n := nodeWith(c.ii, nil)
			err := d.Validate(ctx, &conductor.Task{Node: n})
			if (err != nil) != c.validate {
				t.Fatalf("validate: %v; want an error there: %v", err, c.validate)
			}
			_, err = d.resolveImage(ctx, n)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
			if gets != before {
				t.Fatal("the image was downloaded although the deploy cannot go on")
			}
		})
	}

	// Without boot services the conductor cannot serve images: local and file:// fail
	// validation with the reason.
	bare := New(testConfig(), slog.New(slog.DiscardHandler))
	for _, ii := range []map[string]any{
		{"image_source": hs.URL + "/images/disk.img", "image_checksum": sum, "image_download_source": "local"},
		{"image_source": "file://" + allowed + "/disk.img", "image_checksum": sum},
	} {
		bare.cfg.FileDirs = []string{allowed}
		if err := bare.Validate(ctx, &conductor.Task{Node: nodeWith(ii, nil)}); err == nil || !strings.Contains(err.Error(), "provisioning_interface") {
			t.Errorf("%v: validate %v, want the reason", ii, err)
		}
	}
}
