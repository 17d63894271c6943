package direct

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/driver/pxe"
	"github.com/ironwork/ironwork/internal/image"
)

// Image download sources (Ironic's image_download_source).
const (
	// SourceHTTP: the agent downloads the image straight from its URL.
	SourceHTTP = "http"
	// SourceLocal: the conductor caches the image and the agent downloads it from the
	// conductor's HTTP boot server.
	SourceLocal = "local"
)

// LocalImages serves instance images from the conductor, for image_download_source local
// (and for file:// images, which only the conductor can read).
type LocalImages interface {
	// Serve caches src (verified against its checksum) and returns the URL the node's
	// agent downloads it from.
	Serve(ctx context.Context, node string, src image.Source) (string, error)
	// Remove stops serving the node's image; nothing served is no error.
	Remove(ctx context.Context, node string) error
}

// instanceImage is the image a deploy writes, resolved: where the agent downloads it, its
// digest and format, and the Authorization the download needs (a secret: never stored).
type instanceImage struct {
	url, checksum, diskFormat, auth string
	id                              string // IPA's image id: the file name
	local                           bool
}

// downloadSource is a node's image_download_source: instance_info, else driver_info, else
// the conductor's default (Ironic's order).
func (d *Interface) downloadSource(n *ironwork.Node) string {
	if s, _ := n.InstanceInfo["image_download_source"].(string); s != "" {
		return s
	}
	if s, _ := n.DriverInfo["image_download_source"].(string); s != "" {
		return s
	}
	return d.cfg.ImageDownloadSource
}

// pullSecret is the registry credential of an oci:// image: instance_info's, else
// driver_info's image_pull_secret.
func pullSecret(n *ironwork.Node) string {
	if s, _ := n.InstanceInfo["image_pull_secret"].(string); s != "" {
		return s
	}
	s, _ := n.DriverInfo["image_pull_secret"].(string)
	return s
}

// isFileSource reports whether an image source is a local file of the conductor.
func isFileSource(s string) bool { return strings.HasPrefix(s, "file://") || strings.HasPrefix(s, "/") }

// validateImageSource checks what can be checked without I/O beyond the local file system:
// the source's scheme, the download source, local files inside the allowed directories.
func (d *Interface) validateImageSource(n *ironwork.Node, src string) error {
	ds := d.downloadSource(n)
	switch ds {
	case SourceHTTP, SourceLocal:
	case "swift":
		return errors.New("image_download_source swift is not supported: use http or local")
	default:
		return fmt.Errorf("image_download_source %q is not one of http, local", ds)
	}
	switch {
	case image.IsOCI(src):
		if _, err := image.ParseOCIReference(src); err != nil {
			return fmt.Errorf("instance_info.image_source: %w", err)
		}
	case isFileSource(src):
		if _, err := pxe.SourceURL(src, d.cfg.FileDirs); err != nil {
			return fmt.Errorf("instance_info.image_source: %w", err)
		}
		if d.cfg.LocalImages == nil {
			return errors.New("instance_info.image_source is a local file, which this conductor cannot serve: it has no HTTP boot server (set provisioning_interface)")
		}
	case strings.HasPrefix(src, "http://"), strings.HasPrefix(src, "https://"):
	default:
		return fmt.Errorf("instance_info.image_source must be an http(s) URL, an oci:// reference or a file:// URL, not %q", src)
	}
	if ds == SourceLocal && d.cfg.LocalImages == nil {
		return errors.New("image_download_source local needs the conductor's HTTP boot server: set provisioning_interface")
	}
	if c, _ := n.InstanceInfo["image_checksum"].(string); strings.HasPrefix(c, "file://") {
		if _, err := pxe.SourceURL(c, d.cfg.FileDirs); err != nil {
			return fmt.Errorf("instance_info.image_checksum: %w", err)
		}
	}
	return nil
}

// resolveImage works out what the agent downloads: an OCI reference becomes its blob (and
// the registry's token), a checksum URL becomes the image's digest from that file, and a
// local download goes through the conductor's cache. Everything that can fail here fails
// before the agent touches the disk.
func (d *Interface) resolveImage(ctx context.Context, n *ironwork.Node) (instanceImage, error) {
	ii := n.InstanceInfo
	str := func(k string) string { s, _ := ii[k].(string); return s }
	src := str("image_source")
	if err := d.validateImageSource(n, src); err != nil {
		return instanceImage{}, err
	}
	img := instanceImage{url: src, diskFormat: str("image_disk_format"), local: d.downloadSource(n) == SourceLocal}
	switch {
	case image.IsOCI(src):
		ref, _ := image.ParseOCIReference(src)
		arch, _ := n.Properties["cpu_arch"].(string)
		a, err := d.cfg.OCI.Resolve(ctx, image.OCIRequest{Ref: ref, PullSecret: pullSecret(n), CPUArch: arch, PreferQcow2: img.local})
		if err != nil {
			return instanceImage{}, fmt.Errorf("resolve image: %w", err)
		}
		// As Ironic: the registry's digest is the checksum; image_checksum is ignored.
		img.url, img.checksum, img.auth = a.URL, a.Digest, a.Authorization
		if img.diskFormat == "" {
			img.diskFormat = a.DiskFormat
		}
		img.id = strings.ReplaceAll(a.Digest, ":", "-")
	case isFileSource(src):
		u, _ := pxe.SourceURL(src, d.cfg.FileDirs)
		img.url, img.local = u, true
	}
	if img.checksum == "" {
		c := str("image_checksum")
		if v := str("image_os_hash_value"); v != "" {
			c = strings.ToLower(str("image_os_hash_algo")) + ":" + v
		}
		if image.IsChecksumURL(c) {
			if strings.HasPrefix(c, "file://") {
				if _, err := pxe.SourceURL(c, d.cfg.FileDirs); err != nil {
					return instanceImage{}, fmt.Errorf("instance_info.image_checksum: %w", err)
				}
			}
			sum, err := image.ResolveChecksum(ctx, d.cfg.HTTPClient, c, img.url)
			if err != nil {
				return instanceImage{}, fmt.Errorf("image checksum of %s: %w", redactedURL(img.url), err)
			}
			c = sum
		}
		img.checksum = c
	}
	if img.id == "" {
		img.id = path.Base(strings.SplitN(img.url, "?", 2)[0])
	}
	if img.local {
		u, err := d.cfg.LocalImages.Serve(ctx, n.UUID, image.Source{URL: img.url, Checksum: img.checksum, Authorization: img.auth})
		if err != nil {
			return instanceImage{}, fmt.Errorf("cache image %s on the conductor: %w", redactedURL(img.url), err)
		}
		img.url, img.auth = u, ""
	}
	return img, nil
}

// redactedURL drops the query and user info of a URL for errors.
func redactedURL(s string) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		if at := strings.Index(rest, "@"); at >= 0 && at < strings.IndexByte(rest+"/", '/') {
			rest = rest[at+1:]
		}
		s = scheme + "://" + rest
	}
	return s
}

// authorizationParam is IPA's image_request_authorization: the Authorization header value,
// base64-encoded.
func authorizationParam(auth string) string {
	return base64.StdEncoding.EncodeToString([]byte(auth))
}

// removeLocalImage stops serving a node's image from the conductor.
func (d *Interface) removeLocalImage(ctx context.Context, uuid string) error {
	if d.cfg.LocalImages == nil {
		return nil
	}
	return d.cfg.LocalImages.Remove(ctx, uuid)
}

// defaultHTTPClient is used for checksum files when the configuration gives none.
func defaultHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, ResponseHeaderTimeout: 60e9}}
}
