package httpapi

import (
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// The virtual media API's microversions: attach and detach (1.89), list (1.93).
const (
	vVmedia    = 89
	vVmediaGet = 93
)

func (s *Server) vmediaRoutes() {
	s.handle("GET /v1/nodes/{ident}/vmedia", s.listVmedia)
	s.handle("POST /v1/nodes/{ident}/vmedia", s.attachVmedia)
	s.handle("DELETE /v1/nodes/{ident}/vmedia", s.detachVmedia)
}

func vmediaAllowed(r *http.Request, since int) error {
	if versionOf(r.Context()) < since {
		return ironwork.Errorf(ironwork.ENOTFOUND, "The resource could not be found.")
	}
	return nil
}

func (s *Server) listVmedia(w http.ResponseWriter, r *http.Request) error {
	if err := vmediaAllowed(r, vVmediaGet); err != nil {
		return err
	}
	devs, err := callNode(s, r, conductor.OpVirtualMedia)
	if err != nil {
		return err
	}
	out := make([]object, len(devs))
	for i, d := range devs {
		var image any
		if d.Image != "" {
			image = d.Image
		}
		out[i] = object{{"media_types", d.MediaTypes}, {"inserted", d.Inserted}, {"image", image}}
	}
	return s.writeJSON(w, http.StatusOK, out)
}

// attachVmedia checks the body as Ironic's schema does: device_type and image_url required,
// device_type one of disk, cdrom, floppy, image_download_source one of http, local, swift, no
// other member; the URL's scheme one virtual media can use.
func (s *Server) attachVmedia(w http.ResponseWriter, r *http.Request) error {
	if err := vmediaAllowed(r, vVmedia); err != nil {
		return err
	}
	c, body, err := s.condBody(r, "vmedia")
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k != "device_type" && k != "image_url" && k != "image_download_source" {
			return schemaError("vmedia", "Additional properties are not allowed (%s was unexpected)", pyRepr(k))
		}
	}
	str := func(k string, enum []string) (string, error) {
		raw, ok := body[k]
		if !ok {
			return "", nil
		}
		v, ok := raw.(string)
		if !ok {
			return "", schemaError("vmedia", "%s is not of type 'string'", pyRepr(raw))
		}
		if enum != nil && !slices.Contains(enum, v) {
			quoted := make([]string, len(enum))
			for i, e := range enum {
				quoted[i] = pyRepr(e)
			}
			return "", schemaError("vmedia", "%s is not one of [%s]", pyRepr(v), strings.Join(quoted, ", "))
		}
		return v, nil
	}
	for _, k := range []string{"device_type", "image_url"} {
		if _, ok := body[k]; !ok {
			return schemaError("vmedia", "%s is a required property", pyRepr(k))
		}
	}
	device, err := str("device_type", conductor.VirtualMediaDeviceTypes())
	if err != nil {
		return err
	}
	image, err := str("image_url", nil)
	if err != nil {
		return err
	}
	source, err := str("image_download_source", []string{"http", "local", "swift"})
	if err != nil {
		return err
	}
	if source == "" {
		source = "local"
	}
	u, err := url.Parse(image)
	scheme := ""
	if err == nil {
		scheme = u.Scheme
	}
	// The image URL schemes Ironic accepts for virtual media.
	if !slices.Contains([]string{"http", "https", "nfs", "cifs", "smb"}, scheme) {
		return invalid("Unsupported or missing URL scheme: %s", scheme)
	}
	return doOnNode(s, w, r, c, conductor.OpAttachVirtualMedia, func(ref conductor.NodeRef) conductor.AttachVirtualMediaRequest {
		return conductor.AttachVirtualMediaRequest{NodeRef: ref, DeviceType: device, ImageURL: image, DownloadSource: source}
	})
}

func (s *Server) detachVmedia(w http.ResponseWriter, r *http.Request) error {
	if err := vmediaAllowed(r, vVmedia); err != nil {
		return err
	}
	var types []string
	for _, v := range r.URL.Query()["device_types"] {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				types = append(types, t)
			}
		}
	}
	var bad []string
	for _, t := range types {
		if !slices.Contains(conductor.VirtualMediaDeviceTypes(), t) {
			bad = append(bad, t)
		}
	}
	if len(bad) > 0 {
		return invalid("Invalid device type(s) %s (valid are %s)", strings.Join(bad, ", "), strings.Join(conductor.VirtualMediaDeviceTypes(), ", "))
	}
	c, uuid, err := s.condNode(r)
	if err != nil {
		return err
	}
	return noContent(w, conductor.Do(r.Context(), c, conductor.OpDetachVirtualMedia,
		conductor.DetachVirtualMediaRequest{NodeRef: conductor.NodeRef{Node: uuid}, DeviceTypes: types}))
}
