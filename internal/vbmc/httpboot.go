package vbmc

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"
)

// BootHTTP boots the URI set as Boot.HttpBootUri through the UEFI firmware's HTTP boot
// (Redfish's UefiHttp). The virtual BMC emulates it: at the power-on that boots it, it
// downloads the URI (an ISO, in the media network namespace, as InsertMedia does) and QEMU
// gets it as a CD-ROM with bootindex 0, which OVMF boots as the firmware would boot the
// downloaded image.
const BootHTTP = "http"

// httpFetch downloads a machine's HTTP boot image and returns the local file.
type httpFetch func(ctx context.Context, uri string) (string, error)

// errHTTPBootURI refuses an HTTP boot URI that is not an http(s) URL.
var errHTTPBootURI = errors.New("HttpBootUri must be an http or https URL")

// checkHTTPBootURI checks a URI given as Boot.HttpBootUri.
func checkHTTPBootURI(uri string) error {
	u, err := url.Parse(uri)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q: %w", uri, errHTTPBootURI)
	}
	return nil
}

// HTTPBootURI returns the URI the firmware boots over HTTP ("" for none).
func (m *Machine) HTTPBootURI() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.httpURI
}

// SetHTTPBootURI sets ("" clears) the URI the firmware boots over HTTP. The image downloaded
// for the URI before is removed.
func (m *Machine) SetHTTPBootURI(uri string) error {
	if uri != "" {
		if err := checkHTTPBootURI(uri); err != nil {
			return err
		}
	}
	m.mu.Lock()
	old := m.httpFile
	m.httpURI, m.httpFile = uri, ""
	m.mu.Unlock()
	if old != "" {
		os.Remove(old)
	}
	m.log.Info("http boot uri set", "uri", uri)
	return nil
}

// fetchHTTPBoot downloads the HTTP boot image when the next start boots it: a machine that
// is off and whose boot device is BootHTTP. A failed download fails the power-on, as a
// firmware's HTTP boot failure leaves the machine with nothing to boot.
func (m *Machine) fetchHTTPBoot() error {
	m.mu.Lock()
	boot, uri, on, fetch := m.boot, m.httpURI, m.onLocked(), m.fetch
	m.mu.Unlock()
	if on || boot != BootHTTP {
		return nil
	}
	if uri == "" {
		return errors.New("UefiHttp boot with no HttpBootUri")
	}
	if fetch == nil {
		return errors.New("this machine cannot download an HTTP boot image")
	}
	// PowerOn has no context (IPMI and Redfish call it alike): the download is bounded by time.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	file, err := fetch(ctx, uri)
	if err != nil {
		return fmt.Errorf("UEFI HTTP boot: %w", err)
	}
	m.mu.Lock()
	old := m.httpFile
	if m.httpURI != uri { // changed meanwhile: the new URI boots next time
		m.mu.Unlock()
		os.Remove(file)
		return errors.New("HttpBootUri changed during the download")
	}
	m.httpFile = file
	m.mu.Unlock()
	if old != "" && old != file {
		os.Remove(old)
	}
	m.log.Info("http boot image downloaded", "uri", uri, "file", file)
	return nil
}
