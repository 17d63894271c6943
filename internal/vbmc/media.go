package vbmc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/ironwork/ironwork/internal/netns"
)

// MaxMediaSize bounds an image the virtual BMC downloads.
const MaxMediaSize = 4 << 30

// Why an image is refused: its URL (errMediaSource) or its content (errBadMedia).
var (
	errMediaSource = errors.New("the virtual BMC fetches images only over http(s) from loopback or private (lab network namespace) addresses")
	errBadMedia    = errors.New("the image cannot be mounted")
)

// mediaAllowed says whether ip may serve images: the lab's addresses are loopback or
// private ones inside network namespaces the lab made; the virtual BMC reaches nothing else.
func mediaAllowed(ip net.IP) bool {
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast()
}

// downloadMedia fetches image into dir as a new file and returns its path. The dial checks
// the address actually connected to, so a name that resolves elsewhere is refused too. A
// non-empty netns makes the connection inside that network namespace.
func downloadMedia(ctx context.Context, image, dir, netnsName string, timeout time.Duration) (string, error) {
	u, err := url.Parse(image)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("image %q: %w", image, errMediaSource)
	}
	if ip := net.ParseIP(u.Hostname()); ip != nil && !mediaAllowed(ip) {
		return "", fmt.Errorf("image %q: %w", image, errMediaSource)
	}
	dial := (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	if netnsName != "" {
		inNS := netns.Dialer(netnsName)
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			return inNS(ctx, network, addr)
		}
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if ta, ok := c.RemoteAddr().(*net.TCPAddr); !ok || !mediaAllowed(ta.IP) {
				c.Close()
				return nil, fmt.Errorf("image %q at %s: %w", image, c.RemoteAddr(), errMediaSource)
			}
			return c, nil
		},
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, image, nil)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", image, err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", image, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("download %s: HTTP %s", image, resp.Status)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("download %s: %w", image, err)
	}
	name := make([]byte, 8)
	rand.Read(name)
	path := filepath.Join(dir, "media-"+hex.EncodeToString(name)+".iso")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", image, err)
	}
	n, err := io.Copy(f, io.LimitReader(resp.Body, MaxMediaSize+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > MaxMediaSize {
		err = fmt.Errorf("larger than %d bytes", int64(MaxMediaSize))
	}
	if err == nil && n < 32*1024 {
		err = fmt.Errorf("%d bytes is too small for a bootable ISO 9660 image", n)
	}
	if err == nil {
		err = checkISO(path)
	}
	if err != nil {
		os.Remove(path)
		return "", fmt.Errorf("download %s: %w: %w", image, errBadMedia, err)
	}
	return path, nil
}

// checkISO refuses what is not an ISO 9660 image (the primary volume descriptor's "CD001"
// at sector 16), as a BMC refuses to mount a file that is not one.
func checkISO(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	b := make([]byte, 6)
	if _, err := f.ReadAt(b, 16*2048); err != nil || string(b[1:]) != "CD001" {
		return errors.New("not an ISO 9660 image (no volume descriptor at sector 16)")
	}
	return nil
}
