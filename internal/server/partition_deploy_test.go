package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/agent"
	"github.com/ironwork/ironwork/internal/server"
)

// TestDirectDeployPartitionImage deploys a partition image (an ext4 root file system with
// EFI files in /boot/efi) through the whole server with the agent as a process and a file as
// its disk: UEFI (the server's default boot mode), GPT, an ephemeral partition, swap and a
// config drive. Then bad input: a kernel without a ramdisk and a missing root_gb are refused
// by validation; a BIOS deploy of an image without GRUB fails with the reason and a zeroed
// first MiB.
func TestDirectDeployPartitionImage(t *testing.T) {
	t.Parallel() // mostly waits on a guest under TCG: overlaps the package's other long tests
	for _, tool := range []string{"mkfs.ext4", "mkfs.vfat", "mtools", "blkid", "sfdisk"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian: e2fsprogs dosfstools mtools util-linux fdisk)", tool)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("the agent mounts the root partition (loop device): needs root")
	}
	dir := t.TempDir()
	mac := hostMAC(t)
	agentBin := buildAgent(t)
	content := filepath.Join(dir, "content")
	if err := os.MkdirAll(filepath.Join(content, "boot", "efi", "EFI", "debian"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(content, "boot", "efi", "EFI", "debian", "grubx64.efi"), []byte("GRUB-EFI"), 0o644); err != nil {
		t.Fatal(err)
	}
	imgDir := filepath.Join(dir, "images")
	if err := os.MkdirAll(imgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(imgDir, "root.img")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", content, img, "16M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	b, _ := os.ReadFile(img)
	sum := sha256.Sum256(b)
	images := httptest.NewServer(http.FileServer(http.Dir(imgDir)))
	defer images.Close()
	disk := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 2<<30); err != nil { // sparse
		t.Fatal(err)
	}
	srv := startServer(t, "sqlite://"+filepath.Join(dir, "db"), func(c *server.Config) {
		c.AgentPowerOffTimeout = server.Duration{Duration: 2 * time.Second}
	})
	c := &api.Client{BaseURL: srv.URL(), Version: "1.87"}
	ctx := context.Background()
	ii := map[string]any{"image_source": images.URL + "/root.img", "image_checksum": "sha256:" + hex.EncodeToString(sum[:]),
		"kernel": images.URL + "/vmlinuz", "ramdisk": images.URL + "/initrd", "root_gb": 0, "swap_mb": 16, "ephemeral_gb": 1,
		"ephemeral_format": "ext4"}
	var node map[string]any
	if err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "part-1", "driver": "fake-hardware",
		"deploy_interface": "direct", "boot_interface": "fake", "instance_info": ii}, &node); err != nil {
		t.Fatal(err)
	}
	uuid := node["uuid"].(string)
	if err := c.Do(ctx, http.MethodPost, "/v1/ports", map[string]any{"node_uuid": uuid, "address": mac}, nil); err != nil {
		t.Fatal(err)
	}
	provisionVerb(t, c, uuid, "manage")
	waitState(t, c, uuid, "manageable", 10*time.Second)
	provisionVerb(t, c, uuid, "provide")
	waitState(t, c, uuid, "clean wait", 10*time.Second)
	a := startAgent(t, agentBin, srv.URL(), disk)
	waitState(t, c, uuid, "available", 60*time.Second)
	a.stop()

	// Bad input, refused before anything boots.
	patch := func(op, path string, v any) {
		t.Helper()
		p := map[string]any{"op": op, "path": path}
		if op != "remove" {
			p["value"] = v
		}
		if err := c.Do(ctx, http.MethodPatch, "/v1/nodes/"+uuid, []map[string]any{p}, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range []struct {
		op, path string
		value    any
		want     string
	}{
		{"remove", "/instance_info/ramdisk", nil, "instance_info.ramdisk is missing: a partition image's kernel and ramdisk go together"},
		{"remove", "/instance_info/root_gb", nil, "root_gb"},
		{"add", "/instance_info/capabilities", map[string]any{"disk_label": "sun"}, `disk_label capability "sun" is neither gpt nor msdos`},
	} {
		patch(bad.op, bad.path, bad.value)
		err := c.Do(ctx, http.MethodPut, "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": "active"}, nil)
		if !api.IsStatus(err, http.StatusBadRequest) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s %s: %v, want a 400 with %q", bad.op, bad.path, err, bad.want)
		}
		patch("add", "/instance_info", ii)
	}

	start := time.Now()
	cd := map[string]any{"meta_data": map[string]any{"hostname": "part-1.example"}}
	if err := c.Do(ctx, http.MethodPut, "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": "active", "configdrive": cd}, nil); err != nil {
		t.Fatal(err)
	}
	waitState(t, c, uuid, "wait call-back", 10*time.Second)
	startAgent(t, agentBin, srv.URL(), disk)
	n := waitState(t, c, uuid, "active", 90*time.Second)
	t.Logf("partition-image deploy with the agent: %.1f s", time.Since(start).Seconds())

	pt, err := agent.PartitionUUIDs(disk)
	if err != nil || pt.Type != "gpt" || len(pt.Partitions) != 5 {
		t.Fatalf("partition table %+v, %v", pt, err)
	}
	root, esp := pt.Partitions[4], pt.Partitions[0]
	blkid := func(off int64, tag string) string {
		out, _ := exec.Command("blkid", "-p", "-O", fmt.Sprint(off), "-s", tag, "-o", "value", disk).Output()
		return strings.TrimSpace(string(out))
	}
	dii, _ := n["driver_internal_info"].(map[string]any)
	if got := blkid(root.Start, "UUID"); got == "" || dii["root_uuid_or_disk_id"] != got || dii["is_whole_disk_image"] != false {
		t.Errorf("root_uuid_or_disk_id %v, is_whole_disk_image %v; blkid root UUID %q", dii["root_uuid_or_disk_id"], dii["is_whole_disk_image"], got)
	}
	for i, want := range []string{"vfat", "ext4", "swap", "iso9660", "ext4"} {
		if got := blkid(pt.Partitions[i].Start, "TYPE"); got != want {
			t.Errorf("partition %d: blkid TYPE %q, want %q", i+1, got, want)
		}
	}
	out, err := exec.Command("mtools", "-c", "mtype", "-i", fmt.Sprintf("%s@@%d", disk, esp.Start), "::/EFI/BOOT/BOOTX64.EFI").Output()
	if err != nil || string(out) != "GRUB-EFI" {
		t.Errorf("ESP's BOOTX64.EFI: %q, %v", out, err)
	}
	checkConfigDrivePartition(t, disk, map[string]string{
		"openstack/latest/meta_data.json": `{"hostname":"part-1.example","name":"part-1","uuid":"` + uuid + `"}`,
	})

	// BIOS, and the image has no GRUB: the boot loader cannot be installed.
	provisionVerb(t, c, uuid, "deleted")
	waitState(t, c, uuid, "clean wait", 20*time.Second)
	startAgent(t, agentBin, srv.URL(), disk)
	waitState(t, c, uuid, "available", 60*time.Second)
	bios := map[string]any{"deploy_boot_mode": "bios"}
	for k, v := range ii {
		bios[k] = v
	}
	patch("add", "/instance_info", bios)
	provisionVerb(t, c, uuid, "active")
	waitState(t, c, uuid, "wait call-back", 10*time.Second)
	startAgent(t, agentBin, srv.URL(), disk)
	n = waitState(t, c, uuid, "deploy failed", 90*time.Second)
	if le := fmt.Sprint(n["last_error"]); !strings.Contains(le, "image.install_bootloader") || !strings.Contains(le, "no grub-install") {
		t.Errorf("last_error %s", le)
	}
	b = make([]byte, 1<<20)
	f, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	for _, c := range b {
		if c != 0 {
			t.Fatal("a failed boot loader install left the disk's first MiB")
		}
	}
}
