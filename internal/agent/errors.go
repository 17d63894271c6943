package agent

import (
	"errors"
	"fmt"
)

// Sentinel errors callers may branch on with errors.Is.
var (
	// ErrRangeUnsupported: the image server ignored an HTTP Range request.
	// qcow2 images are read with random access and need ranges.
	ErrRangeUnsupported = errors.New("image server does not honour HTTP Range requests, which qcow2 images need")
	// ErrUnsupportedImage: the image uses a format or feature this agent
	// cannot write (backing file, encryption, zstd clusters, vmdk, ...).
	ErrUnsupportedImage = errors.New("unsupported image")
	// ErrChecksumRequired: the request carried no checksum.
	ErrChecksumRequired = errors.New("image checksum is required")
	// ErrNoDevice: no disk satisfies the root device hints.
	ErrNoDevice = errors.New("no suitable root device")
)

// ChecksumError reports an image whose digest differs from the expected one.
type ChecksumError struct {
	Expected string // "sha256:hex"
	Got      string // "sha256:hex"
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("image checksum mismatch: expected %s, got %s", e.Expected, e.Got)
}

// TooLargeError reports an image that does not fit on the target.
type TooLargeError struct {
	ImageSize  int64 // bytes of the image (or written so far when AtLeast)
	AtLeast    bool  // the size is a lower bound (compressed stream)
	Target     string
	TargetSize int64
}

func (e *TooLargeError) Error() string {
	if e.AtLeast {
		return fmt.Sprintf("image of more than %d bytes does not fit on %s (%d bytes)", e.ImageSize, e.Target, e.TargetSize)
	}
	return fmt.Sprintf("image of %d bytes does not fit on %s (%d bytes)", e.ImageSize, e.Target, e.TargetSize)
}

// ShortReadError reports a download that ended before the announced length.
type ShortReadError struct {
	Got  int64
	Want int64 // -1 when the server announced no length
	Err  error // the transport error, if any
}

func (e *ShortReadError) Error() string {
	if e.Want < 0 {
		return fmt.Sprintf("image download truncated after %d bytes: %v", e.Got, e.Err)
	}
	if e.Err != nil {
		return fmt.Sprintf("image download truncated: got %d of %d bytes: %v", e.Got, e.Want, e.Err)
	}
	return fmt.Sprintf("image download truncated: got %d of %d bytes", e.Got, e.Want)
}

func (e *ShortReadError) Unwrap() error { return e.Err }

// HTTPStatusError reports an image server answering with an error status.
// URL has its query string removed (temporary URLs carry signatures).
type HTTPStatusError struct {
	URL    string
	Status string
	Code   int
}

func (e *HTTPStatusError) Error() string {
	return fmt.Sprintf("download image %s: HTTP %s", e.URL, e.Status)
}
