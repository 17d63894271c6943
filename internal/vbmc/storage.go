package vbmc

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// raidTypes are the Redfish RAIDType values the virtual controller builds, with the number of
// drives each takes (min, max) and the drives' worth of capacity redundancy costs per span.
var raidTypes = map[string]struct{ min, max, overhead, spans int }{
	"RAID0":  {1, 1000, 0, 1},
	"RAID1":  {2, 2, 1, 1},
	"RAID5":  {3, 1000, 1, 1},
	"RAID6":  {4, 1000, 2, 1},
	"RAID10": {4, 1000, 1, 2},
	"RAID50": {6, 1000, 1, 2},
	"RAID60": {8, 1000, 2, 2},
}

// volume is a RAID volume of the virtual storage controller. Volumes exist only in what the
// controller reports: the QEMU machine's disks stay as they are.
type volume struct {
	ID, Name, RAIDType string
	Size               int64
	Drives             []int
}

// storageVolumes keeps every machine's volumes (the zero value is ready to use).
type storageVolumes struct {
	mu     sync.Mutex
	byName map[string][]volume
	next   int
}

func (s *storageVolumes) list(machine string) []volume {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.byName[machine])
}

// storageResource adds the Volumes of the virtual controller to the Storage documents of
// hardwareResource. ok is false for a path it does not serve.
func (v *VBMC) storageResource(sysPath, name, sub string, hw Hardware) (map[string]any, bool) {
	p := sysPath + "/" + sub
	vols := v.storage.list(name)
	switch {
	case sub == "Storage/0":
		doc, ok := hardwareResource(sysPath, sub, hw)
		if ok {
			doc["Volumes"] = map[string]any{"@odata.id": p + "/Volumes"}
		}
		return doc, ok
	case sub == "Storage/0/Volumes":
		ids := make([]string, len(vols))
		for i, vol := range vols {
			ids[i] = vol.ID
		}
		return collection(p, "Volume", ids), true
	case strings.HasPrefix(sub, "Storage/0/Volumes/"):
		id := strings.TrimPrefix(sub, "Storage/0/Volumes/")
		for _, vol := range vols {
			if vol.ID == id {
				return volumeDoc(sysPath, p, vol), true
			}
		}
		return nil, false
	}
	return hardwareResource(sysPath, sub, hw)
}

func volumeDoc(sysPath, p string, vol volume) map[string]any {
	drives := make([]map[string]any, len(vol.Drives))
	for i, d := range vol.Drives {
		drives[i] = map[string]any{"@odata.id": fmt.Sprintf("%s/Storage/0/Drives/%d", sysPath, d)}
	}
	return map[string]any{"@odata.id": p, "@odata.type": "#Volume.v1_6_0.Volume", "Id": vol.ID, "Name": vol.Name,
		"RAIDType": vol.RAIDType, "CapacityBytes": vol.Size, "Status": enabled,
		"Links": map[string]any{"Drives": drives, "Drives@odata.count": len(drives)}}
}

// serveStorage answers the requests under a System's Storage: GETs, POST of a new volume to
// Storage/0/Volumes and DELETE of a volume. A volume takes whole drives, which no other volume
// may use; a request that does not fit changes nothing.
func (v *VBMC) serveStorage(w http.ResponseWriter, r *http.Request, m *Machine, sub string) {
	sysPath := "/redfish/v1/Systems/" + m.Name
	hw := HardwareFromCommand(m.Command)
	switch {
	case r.Method == http.MethodGet:
		doc, ok := v.storageResource(sysPath, m.Name, sub, hw)
		if !ok {
			redfishError(w, http.StatusNotFound, "no resource at "+r.URL.Path)
			return
		}
		writeJSON(w, http.StatusOK, doc)
	case r.Method == http.MethodPost && sub == "Storage/0/Volumes":
		vol, status, err := v.createVolume(r, m.Name, sysPath, hw)
		if err != nil {
			redfishError(w, status, err.Error())
			return
		}
		loc := sysPath + "/Storage/0/Volumes/" + vol.ID
		v.log.Info("volume created", "vm", m.Name, "volume", vol.ID, "raid", vol.RAIDType, "bytes", vol.Size)
		w.Header().Set("Location", loc)
		writeJSON(w, http.StatusCreated, volumeDoc(sysPath, loc, vol))
	case r.Method == http.MethodDelete && strings.HasPrefix(sub, "Storage/0/Volumes/"):
		id := strings.TrimPrefix(sub, "Storage/0/Volumes/")
		v.storage.mu.Lock()
		vols := v.storage.byName[m.Name]
		i := slices.IndexFunc(vols, func(vol volume) bool { return vol.ID == id })
		if i >= 0 {
			v.storage.byName[m.Name] = slices.Delete(slices.Clone(vols), i, i+1)
		}
		v.storage.mu.Unlock()
		if i < 0 {
			redfishError(w, http.StatusNotFound, "no volume "+id)
			return
		}
		v.log.Info("volume deleted", "vm", m.Name, "volume", id)
		w.WriteHeader(http.StatusNoContent)
	default:
		redfishError(w, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
	}
}

// createVolume checks a new volume's request against the machine's drives and volumes and
// adds it; the status goes with the error.
func (v *VBMC) createVolume(r *http.Request, name, sysPath string, hw Hardware) (volume, int, error) {
	var body struct {
		Name          string
		RAIDType      string
		VolumeType    string
		CapacityBytes *int64
		Links         struct {
			Drives []struct {
				ID string `json:"@odata.id"`
			}
		}
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil {
		return volume{}, http.StatusBadRequest, fmt.Errorf("malformed JSON: %w", err)
	}
	rt := body.RAIDType
	if rt == "" {
		rt = map[string]string{"NonRedundant": "RAID0", "Mirrored": "RAID1", "StripedWithParity": "RAID5",
			"SpannedMirrors": "RAID10", "SpannedStripesWithParity": "RAID50"}[body.VolumeType]
	}
	spec, ok := raidTypes[rt]
	if !ok {
		return volume{}, http.StatusBadRequest, fmt.Errorf("unsupported RAIDType %q (VolumeType %q)", body.RAIDType, body.VolumeType)
	}
	n := len(body.Links.Drives)
	if n < spec.min || n > spec.max || n%spec.spans != 0 {
		return volume{}, http.StatusBadRequest, fmt.Errorf("%s takes %d to %d drives (a multiple of %d), not %d", rt, spec.min, spec.max, spec.spans, n)
	}
	prefix := sysPath + "/Storage/0/Drives/"
	var drives []int
	smallest := int64(-1)
	for _, d := range body.Links.Drives {
		i, err := strconv.Atoi(strings.TrimPrefix(d.ID, prefix))
		if !strings.HasPrefix(d.ID, prefix) || err != nil || i < 0 || i >= len(hw.Disks) || strconv.Itoa(i) != strings.TrimPrefix(d.ID, prefix) {
			return volume{}, http.StatusBadRequest, fmt.Errorf("no drive %s", d.ID)
		}
		if slices.Contains(drives, i) {
			return volume{}, http.StatusBadRequest, fmt.Errorf("drive %s is named twice", d.ID)
		}
		drives = append(drives, i)
		if smallest < 0 || hw.Disks[i] < smallest {
			smallest = hw.Disks[i]
		}
	}
	usable := int64(spec.spans*(n/spec.spans-spec.overhead)) * smallest
	size := usable
	if body.CapacityBytes != nil {
		if *body.CapacityBytes <= 0 || *body.CapacityBytes > usable {
			return volume{}, http.StatusBadRequest, fmt.Errorf("CapacityBytes %d does not fit: %s over these drives holds at most %d bytes", *body.CapacityBytes, rt, usable)
		}
		size = *body.CapacityBytes
	}
	v.storage.mu.Lock()
	defer v.storage.mu.Unlock()
	for _, vol := range v.storage.byName[name] {
		for _, d := range vol.Drives {
			if slices.Contains(drives, d) {
				return volume{}, http.StatusConflict, fmt.Errorf("drive %s%d belongs to volume %s", prefix, d, vol.ID)
			}
		}
	}
	v.storage.next++
	vol := volume{ID: strconv.Itoa(v.storage.next), Name: body.Name, RAIDType: rt, Size: size, Drives: drives}
	if vol.Name == "" {
		vol.Name = "Volume " + vol.ID
	}
	if v.storage.byName == nil {
		v.storage.byName = map[string][]volume{}
	}
	v.storage.byName[name] = append(v.storage.byName[name], vol)
	return vol, 0, nil
}
