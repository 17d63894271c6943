package vbmc

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
)

// TestStorageVolumes: the virtual controller creates volumes over whole drives and refuses
// what does not fit (unknown RAIDType, wrong drive count, capacity, a drive twice or in use)
// without changing anything; DELETE frees the drives. The machine is never started.
func TestStorageVolumes(t *testing.T) {
	cmd, _ := labShape(t, false) // disks of 8 and 4 GiB
	v := startVBMC(t, cmd)
	sys := "/redfish/v1/Systems/vm1"
	do := func(method, path, body string) (int, map[string]any, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(method, v.RedfishURL+path, strings.NewReader(body))
		req.SetBasicAuth("admin", "password")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m, resp.Header
	}
	drives := func(ids ...string) string {
		var refs []string
		for _, id := range ids {
			refs = append(refs, `{"@odata.id": "`+sys+`/Storage/0/Drives/`+id+`"}`)
		}
		return `"Links": {"Drives": [` + strings.Join(refs, ", ") + `]}`
	}
	count := func() float64 {
		t.Helper()
		_, m, _ := do("GET", sys+"/Storage/0/Volumes", "")
		return m["Members@odata.count"].(float64)
	}
	if _, m, _ := do("GET", sys+"/Storage/0", ""); m["Volumes"] == nil || len(m["Drives"].([]any)) != 2 {
		t.Fatalf("Storage/0 = %v", m)
	}
	for _, tc := range []struct {
		body string
		want int
		msg  string
	}{
		{`{"RAIDType": "RAID7", ` + drives("0", "1") + `}`, 400, "unsupported RAIDType"},
		{`{"RAIDType": "RAID5", ` + drives("0", "1") + `}`, 400, "RAID5 takes 3 to 1000 drives"},
		{`{"RAIDType": "RAID1", "CapacityBytes": 5368709120, ` + drives("0", "1") + `}`, 400, "holds at most 4294967296 bytes"},
		{`{"RAIDType": "RAID1", ` + drives("0", "0") + `}`, 400, "named twice"},
		{`{"RAIDType": "RAID1", ` + drives("0", "2") + `}`, 400, "no drive"},
		{`{"RAIDType": `, 400, "malformed JSON"},
	} {
		st, m, _ := do("POST", sys+"/Storage/0/Volumes", tc.body)
		if st != tc.want || !strings.Contains(m["error"].(map[string]any)["message"].(string), tc.msg) {
			t.Errorf("POST %s = %d %v, want %d %q", tc.body, st, m, tc.want, tc.msg)
		}
	}
	if count() != 0 {
		t.Fatal("a refused volume was created")
	}
	st, m, h := do("POST", sys+"/Storage/0/Volumes", `{"VolumeType": "Mirrored", "Name": "os", `+drives("0", "1")+`}`)
	if st != 201 || m["RAIDType"] != "RAID1" || m["CapacityBytes"] != float64(4<<30) || h.Get("Location") != m["@odata.id"] {
		t.Fatalf("create = %d %v %v", st, m, h)
	}
	if st, _, _ := do("POST", sys+"/Storage/0/Volumes", `{"RAIDType": "RAID0", `+drives("1")+`}`); st != 409 {
		t.Errorf("a drive in use: %d, want 409", st)
	}
	if st, _, _ := do("PATCH", sys+"/Storage/0/Volumes", `{}`); st != 405 {
		t.Errorf("PATCH: %d, want 405", st)
	}
	if st, _, _ := do("DELETE", sys+"/Storage/0/Volumes/99", ""); st != 404 {
		t.Errorf("DELETE of no volume: %d, want 404", st)
	}
	if st, _, _ := do("DELETE", m["@odata.id"].(string), ""); st != 204 || count() != 0 {
		t.Fatalf("DELETE: %d, %v volumes left", st, count())
	}
	if st, _, _ := do("POST", sys+"/Storage/0/Volumes", `{"RAIDType": "RAID0", `+drives("1")+`}`); st != 201 {
		t.Errorf("a freed drive: %d, want 201", st)
	}
}

// TestStorageVolumesWithSushy: Ironic's own Redfish client (sushy, as Ironic's redfish raid
// interface uses it) reads the vbmc's drives, creates a RAID-1 volume, reads it back and
// deletes it.
func TestStorageVolumesWithSushy(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import sushy").Run(); err != nil {
		t.Fatal("python3-sushy is not installed: scripts/deps.sh installs it")
	}
	cmd, _ := labShape(t, false)
	v := startVBMC(t, cmd)
	script := fmt.Sprintf(`
import sushy
s = sushy.Sushy(%q, username="admin", password="password")
st = s.get_system("/redfish/v1/Systems/vm1").storage.get_members()[0]
drives = st.drives
print("drives", sorted(d.capacity_bytes for d in drives))
vol = st.volumes.create({"RAIDType": "RAID1", "Name": "os", "CapacityBytes": 2 << 30,
    "Links": {"Drives": [{"@odata.id": d.path} for d in drives]}})
print("created", vol.name, vol.raid_type.value if hasattr(vol.raid_type, "value") else vol.raid_type, vol.capacity_bytes)
st.volumes.refresh()
print("count", len(st.volumes.get_members()))
vol.delete()
fresh = s.get_system("/redfish/v1/Systems/vm1").storage.get_members()[0]
print("after delete", len(fresh.volumes.get_members()))
`, v.RedfishURL+"/redfish/v1")
	out, err := exec.Command("/usr/bin/python3", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("sushy: %v\n%s", err, out)
	}
	for _, line := range []string{fmt.Sprintf("drives [%d, %d]", 4<<30, 8<<30), fmt.Sprintf("created os RAID1 %d", 2<<30), "count 1", "after delete 0"} {
		if !strings.Contains(string(out), line) {
			t.Errorf("sushy output lacks %q:\n%s", line, out)
		}
	}
}
