// Package configdrive builds OpenStack config drives: the ISO 9660 images, labelled
// config-2, that cloud-init and its peers read an instance's meta data, network data,
// user data and vendor data from. It owns the dict form of Ironic's configdrive (API 1.56+),
// its validation and the image's layout, and a small deterministic ISO 9660 writer with
// Rock Ridge names. It does no I/O and knows nothing of nodes beyond a UUID and a name.
package configdrive

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// Label is the volume label cloud-init looks a config drive up by.
const Label = "config-2"

// MaxSize bounds a built image, as Ironic documents the config drive's limit (64 MiB).
const MaxSize = 64 << 20

// Versions are the metadata versions the image carries each file under, as openstacksdk
// (which Ironic builds with) writes them: openstack/<version>/...
var versions = []string{"2012-08-10", "latest"}

// Drive is a config drive in the dict form: every member is optional.
type Drive struct {
	MetaData    map[string]any
	NetworkData map[string]any
	// UserData is a string (written as is), or an object or list (written as JSON).
	UserData   any
	VendorData map[string]any
}

// Parse checks v against Ironic's schema for the dict form: only the keys meta_data,
// network_data, vendor_data (objects) and user_data (object, list, string or null).
func Parse(v map[string]any) (Drive, error) {
	var d Drive
	obj := func(k string, x any) (map[string]any, error) {
		if x == nil {
			return nil, nil
		}
		m, ok := x.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s must be an object", k)
		}
		return m, nil
	}
	var err error
	for k, x := range v {
		switch k {
		case "meta_data":
			d.MetaData, err = obj(k, x)
		case "network_data":
			d.NetworkData, err = obj(k, x)
		case "vendor_data":
			d.VendorData, err = obj(k, x)
		case "user_data":
			switch x.(type) {
			case nil, string, map[string]any, []any:
				d.UserData = x
			default:
				err = fmt.Errorf("user_data must be an object, a list or a string")
			}
		default:
			err = fmt.Errorf("Additional properties are not allowed ('%s' was unexpected)", k)
		}
		if err != nil {
			return Drive{}, err
		}
	}
	return d, nil
}

// Files are the image's files, as Ironic and openstacksdk lay them out: meta_data.json
// always (with uuid, and name when not empty, added when absent, as Ironic does), and
// network_data.json, vendor_data2.json and user_data when given and not empty, each under
// openstack/2012-08-10 and openstack/latest.
func (d Drive) Files(uuid, name string) ([]File, error) {
	meta := map[string]any{}
	for k, v := range d.MetaData {
		meta[k] = v
	}
	if _, ok := meta["uuid"]; !ok {
		meta["uuid"] = uuid
	}
	if _, ok := meta["name"]; !ok && name != "" {
		meta["name"] = name
	}
	type part struct {
		name string
		data []byte
	}
	var parts []part
	add := func(file string, v any) error {
		b, err := encodeJSON(v)
		if err != nil {
			return fmt.Errorf("config drive %s: %w", file, err)
		}
		parts = append(parts, part{file, b})
		return nil
	}
	if err := add("meta_data.json", meta); err != nil {
		return nil, err
	}
	if len(d.NetworkData) > 0 {
		if err := add("network_data.json", d.NetworkData); err != nil {
			return nil, err
		}
	}
	if len(d.VendorData) > 0 {
		if err := add("vendor_data2.json", d.VendorData); err != nil {
			return nil, err
		}
	}
	switch u := d.UserData.(type) {
	case nil:
	case string:
		if u != "" {
			parts = append(parts, part{"user_data", []byte(u)})
		}
	default:
		if err := add("user_data", u); err != nil {
			return nil, err
		}
	}
	var files []File
	for _, v := range versions {
		for _, p := range parts {
			files = append(files, File{Path: "openstack/" + v + "/" + p.name, Data: p.data})
		}
	}
	return files, nil
}

// Build returns the config drive's ISO image for the node with the UUID and name given.
func (d Drive) Build(uuid, name string) ([]byte, error) {
	files, err := d.Files(uuid, name)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, f := range files {
		n += len(f.Data)
	}
	if n > MaxSize {
		return nil, fmt.Errorf("config drive: %d bytes of files, more than the %d allowed", n, MaxSize)
	}
	iso, err := ISO(Label, files)
	if err != nil {
		return nil, fmt.Errorf("config drive: %w", err)
	}
	if len(iso) > MaxSize {
		return nil, fmt.Errorf("config drive: the image is %d bytes, more than the %d allowed", len(iso), MaxSize)
	}
	return iso, nil
}

// Encode is the form Ironic hands a config drive to its agent in: base64 of the gzipped
// image.
func Encode(iso []byte) string {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
	zw.Write(iso) // a bytes.Buffer does not fail
	zw.Close()
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

// BuildEncoded parses the dict form, builds the image and encodes it: what a deploy sends
// the agent.
func BuildEncoded(v map[string]any, uuid, name string) (string, error) {
	d, err := Parse(v)
	if err != nil {
		return "", fmt.Errorf("config drive: %w", err)
	}
	iso, err := d.Build(uuid, name)
	if err != nil {
		return "", err
	}
	return Encode(iso), nil
}

func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
