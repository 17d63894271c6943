package configdrive_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ironwork/ironwork/internal/configdrive"
)

// extract reads an image back with xorriso (Rock Ridge names) and returns every file.
func extract(t *testing.T, iso []byte) map[string]string {
	t.Helper()
	x, err := exec.LookPath("xorriso")
	if err != nil {
		t.Skip("xorriso is not installed (Debian package xorriso)")
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "cd.iso")
	if err := os.WriteFile(img, iso, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if b, err := exec.Command(x, "-osirrox", "on", "-indev", img, "-extract", "/", out).CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v: %s", err, b)
	}
	got := map[string]string{}
	filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(out, p)
			got[rel] = string(b)
		}
		return err
	})
	return got
}

func TestBuildReadBackWithXorriso(t *testing.T) {
	big := strings.Repeat("#cloud-config\n", 1000) // several sectors
	for _, tc := range []struct {
		name string
		in   string
		want map[string]string // under each of openstack/2012-08-10 and openstack/latest
	}{
		{"empty", `{}`, map[string]string{"meta_data.json": `{"name":"node-1","uuid":"u-1"}`}},
		{"everything", `{"meta_data":{"uuid":"mine","public_keys":{"k":"ssh-ed25519 AAA"}},"network_data":{"links":[]},
			"vendor_data":{"v":1},"user_data":"` + strings.ReplaceAll(big, "\n", `\n`) + `"}`, map[string]string{
			"meta_data.json":    `{"name":"node-1","public_keys":{"k":"ssh-ed25519 AAA"},"uuid":"mine"}`,
			"network_data.json": `{"links":[]}`, "vendor_data2.json": `{"v":1}`, "user_data": big}},
		{"user data as JSON", `{"user_data":{"ignition":{"version":"3.0.0"}},"network_data":{}}`, map[string]string{
			"meta_data.json": `{"name":"node-1","uuid":"u-1"}`, "user_data": `{"ignition":{"version":"3.0.0"}}`}},
		{"user data as a list", `{"user_data":[1,"a<b"]}`, map[string]string{
			"meta_data.json": `{"name":"node-1","uuid":"u-1"}`, "user_data": `[1,"a<b"]`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v map[string]any
			dec := json.NewDecoder(strings.NewReader(tc.in))
			dec.UseNumber()
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
			d, err := configdrive.Parse(v)
			if err != nil {
				t.Fatal(err)
			}
			iso, err := d.Build("u-1", "node-1")
			if err != nil {
				t.Fatal(err)
			}
			again, _ := d.Build("u-1", "node-1")
			if !bytes.Equal(iso, again) {
				t.Error("two builds of the same drive differ")
			}
			want := map[string]string{}
			for _, ver := range []string{"2012-08-10", "latest"} {
				for k, s := range tc.want {
					want[filepath.Join("openstack", ver, k)] = s
				}
			}
			if diff := cmp.Diff(want, extract(t, iso)); diff != "" {
				t.Errorf("files read back by xorriso (-want +got):\n%s", diff)
			}
			checkIsoinfo(t, iso, tc.want["meta_data.json"])
		})
	}
}

// checkIsoinfo reads the label and one file with genisoimage's isoinfo, and the label with
// blkid.
func checkIsoinfo(t *testing.T, iso []byte, meta string) {
	t.Helper()
	ii, err := exec.LookPath("isoinfo")
	if err != nil {
		t.Log("isoinfo is not installed (Debian package genisoimage)")
		return
	}
	img := filepath.Join(t.TempDir(), "cd.iso")
	os.WriteFile(img, iso, 0o644)
	out, err := exec.Command(ii, "-d", "-i", img).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Volume id: config-2\n") || !strings.Contains(string(out), "Rock Ridge signatures version 1 found") {
		t.Errorf("isoinfo -d: %v:\n%s", err, out)
	}
	out, err = exec.Command(ii, "-R", "-x", "/openstack/latest/meta_data.json", "-i", img).Output()
	if err != nil || string(out) != meta {
		t.Errorf("isoinfo -R -x meta_data.json: %v: %q, want %q", err, out, meta)
	}
	if bk, err := exec.LookPath("blkid"); err == nil {
		out, err := exec.Command(bk, "-p", "-o", "export", img).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "LABEL=config-2\n") || !strings.Contains(string(out), "TYPE=iso9660\n") {
			t.Errorf("blkid: %v:\n%s", err, out)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, in := range []map[string]any{
		{"meta_data": "x"}, {"network_data": []any{}}, {"vendor_data": 1}, {"user_data": 1.5}, {"user_data": true}, {"other": map[string]any{}},
	} {
		if _, err := configdrive.Parse(in); err == nil {
			t.Errorf("Parse(%v) accepted it", in)
		}
	}
}

func TestBuildBounded(t *testing.T) {
	d := configdrive.Drive{UserData: strings.Repeat("x", configdrive.MaxSize/2+1)}
	if _, err := d.Build("u", ""); err == nil {
		t.Error("a drive over the size limit was built")
	}
}

func FuzzBuild(f *testing.F) {
	f.Add(`{"meta_data":{"a":1},"user_data":"x"}`)
	f.Add(`{"user_data":[1,2],"network_data":{"links":[]},"vendor_data":{"x":null}}`)
	f.Fuzz(func(t *testing.T, in string) {
		var v map[string]any
		if json.Unmarshal([]byte(in), &v) != nil {
			return
		}
		d, err := configdrive.Parse(v)
		if err != nil {
			return
		}
		iso, err := d.Build("u", "n")
		if err != nil {
			t.Fatalf("a parsed drive did not build: %v", err)
		}
		if len(iso)%2048 != 0 || !bytes.Equal(iso[16*2048+1:16*2048+6], []byte("CD001")) {
			t.Fatal("not an ISO 9660 image")
		}
	})
}

func TestISORefusesCollidingNames(t *testing.T) {
	if _, err := configdrive.ISO("x", []configdrive.File{{Path: "a-b"}, {Path: "a_b"}}); err == nil {
		t.Error("two files with one ISO 9660 name were accepted")
	}
	if _, err := configdrive.ISO("x", []configdrive.File{{Path: "../x"}}); err == nil {
		t.Error("a path out of the root was accepted")
	}
}

// TestElToritoReadBack builds bootable images and has xorriso (an independent reader) report
// their boot catalogue: the platforms, the no-emulation entries, their load sizes and where
// the images are; the files must still read back as given.
func TestElToritoReadBack(t *testing.T) {
	x, err := exec.LookPath("xorriso")
	if err != nil {
		t.Skip("xorriso is not installed (Debian package xorriso)")
	}
	bios := bytes.Repeat([]byte{0xB1}, 5000)
	esp := bytes.Repeat([]byte{0xE5}, 1<<20)
	files := []configdrive.File{{Path: "boot/bios.img", Data: bios}, {Path: "boot/efiboot.img", Data: esp}, {Path: "ironwork/kernel", Data: []byte("k")}}
	cases := []struct {
		name string
		boot configdrive.ElTorito
		want []string
	}{
		{"bios and uefi", configdrive.ElTorito{BIOS: "boot/bios.img", EFI: "boot/efiboot.img"}, []string{"El Torito boot img :   1  BIOS  y   none  0x0000  0x00      4", "El Torito boot img :   2  UEFI  y   none  0x0000  0x00   2048"}},
		{"uefi only", configdrive.ElTorito{EFI: "boot/efiboot.img"}, []string{"El Torito boot img :   1  UEFI  y   none  0x0000  0x00   2048"}},
		{"bios only", configdrive.ElTorito{BIOS: "boot/bios.img"}, []string{"El Torito boot img :   1  BIOS  y   none  0x0000  0x00      4"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img, err := configdrive.BootableISO("VMEDIA_BOOT_ISO", files, c.boot)
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(t.TempDir(), "boot.iso")
			if err := os.WriteFile(p, img, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(x, "-indev", p, "-report_el_torito", "plain").CombinedOutput()
			if err != nil {
				t.Fatalf("xorriso: %v\n%s", err, out)
			}
			for _, w := range c.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("xorriso's report lacks %q:\n%s", w, out)
				}
			}
			// The image each entry points at is the file's content.
			blocks := regexp.MustCompile(`(?m)^El Torito boot img :\s+\d+\s+(\w+)\s+y\s+none\s+0x0000\s+0x00\s+\d+\s+(\d+)`).FindAllStringSubmatch(string(out), -1)
			if len(blocks) == 0 {
				t.Fatalf("no boot image LBA in xorriso's report:\n%s", out)
			}
			for _, b := range blocks {
				lba, _ := strconv.Atoi(b[2])
				want := bios
				if b[1] == "UEFI" {
					want = esp
				}
				got := img[lba*2048 : lba*2048+len(want)]
				if b[1] == "BIOS" {
					// The boot information table: the PVD's and the image's addresses, its length.
					pvd, at, n := binary.LittleEndian.Uint32(got[8:]), binary.LittleEndian.Uint32(got[12:]), binary.LittleEndian.Uint32(got[16:])
					if pvd != 16 || int(at) != lba || int(n) != len(bios) {
						t.Errorf("boot information table: PVD %d, image at %d, %d bytes; want 16, %d, %d", pvd, at, n, lba, len(bios))
					}
					got = append(append(append([]byte{}, got[:8]...), want[8:64]...), got[64:]...)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("the %s entry's LBA %d does not hold its boot image", b[1], lba)
				}
			}
		})
	}
	if _, err := configdrive.BootableISO("X", files, configdrive.ElTorito{BIOS: "boot/none.img"}); err == nil {
		t.Error("a boot image that is not one of the files was accepted")
	}
}
