package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ironwork/ironwork/internal/driver/direct"
	"github.com/ironwork/ironwork/internal/image"
)

// agentImagesDir is the directory of the boot root that holds instance images served to
// agents (image_download_source local), one directory per node, as Ironic's
// [deploy]http_image_subdir.
const agentImagesDir = "agent_images"

// localImages serves instance images from the image cache through the HTTP boot server:
// a hard link to the verified master at <boot root>/agent_images/<node>/disk_image.
type localImages struct {
	cache   *image.Cache
	root    string
	httpURL string
}

var _ direct.LocalImages = localImages{}

// localImages is nil when this conductor has no boot services (no HTTP server to serve from).
func (b *bootServices) localImages() direct.LocalImages {
	if b == nil {
		return nil
	}
	return localImages{cache: b.cache, root: bootRoot(b.cfg), httpURL: b.httpURL}
}

func (l localImages) dir(node string) string { return filepath.Join(l.root, agentImagesDir, node) }

// Serve implements direct.LocalImages.
func (l localImages) Serve(ctx context.Context, node string, src image.Source) (string, error) {
	if err := l.cache.Link(ctx, src, filepath.Join(l.dir(node), "disk_image")); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s/%s/%s/disk_image", strings.TrimRight(l.httpURL, "/"), agentImagesDir, node), nil
}

// Remove implements direct.LocalImages.
func (l localImages) Remove(_ context.Context, node string) error {
	if err := os.RemoveAll(l.dir(node)); err != nil {
		return fmt.Errorf("remove the served image of node %s: %w", node, err)
	}
	return nil
}
