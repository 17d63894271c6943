package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/agent"
)

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian: gdisk xorriso util-linux)", tool)
		}
	}
}

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// machineAgent serves Machine.Commands for a file root device on loopback.
func machineAgent(t *testing.T, m *Machine) *testAgent {
	t.Helper()
	srv := New(Config{Token: testToken, Version: "t", Commands: m.Commands()})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &testAgent{url: "http://" + ln.Addr().String(), srv: srv}
}

func (ta *testAgent) run(t *testing.T, name string, params map[string]any) api.CommandResult {
	t.Helper()
	body, _ := json.Marshal(api.AgentCommand{Name: name, Params: params})
	code, b := ta.post(t, testToken, "true", string(body))
	if code != http.StatusOK {
		t.Fatalf("%s: status %d: %s", name, code, b)
	}
	return decode[api.CommandResult](t, b)
}

func TestPrepareImageWithConfigDrive(t *testing.T) {
	needTools(t, "sgdisk", "xorriso", "blkid")
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.raw")
	data := make([]byte, 8<<20)
	rand.Read(data[2<<20 : 3<<20])
	os.WriteFile(img, data, 0o644)
	sh(t, "sgdisk", "-n", "1:2048:+2M", "-t", "1:ef00", "-n", "2:0:0", img)
	sum := sha256.Sum256(mustRead(t, img))
	os.MkdirAll(filepath.Join(dir, "cd/openstack/latest"), 0o755)
	os.WriteFile(filepath.Join(dir, "cd/openstack/latest/meta_data.json"), []byte(`{"uuid":"x"}`), 0o644)
	iso := filepath.Join(dir, "cd.iso")
	sh(t, "xorriso", "-as", "mkisofs", "-quiet", "-V", "config-2", "-J", "-R", "-o", iso, filepath.Join(dir, "cd"))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(mustRead(t, iso))
	zw.Close()

	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Truncate(target, 96<<20)
	images := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer images.Close()
	ta := machineAgent(t, &Machine{RootDevice: target})

	r := ta.run(t, "standby.prepare_image", map[string]any{
		"image_info": map[string]any{"id": "img1", "urls": []string{images.URL + "/disk.raw"},
			"checksum": hex.EncodeToString(sum[:]), "disk_format": "raw", "image_type": "whole-disk"},
		"configdrive": base64.StdEncoding.EncodeToString(gz.Bytes()),
	})
	if r.CommandStatus != api.CommandSucceeded {
		t.Fatalf("prepare_image %+v", r.CommandError)
	}
	if _, ok := r.CommandParams["configdrive"].(string); !ok || !strings.Contains(r.CommandParams["configdrive"].(string), "omitted") {
		t.Errorf("config drive echoed in params: %v", r.CommandParams["configdrive"])
	}
	var res map[string]any
	json.Unmarshal(r.CommandResult, &res)
	ptuuid := strings.TrimSpace(sh(t, "blkid", "-p", "-s", "PTUUID", "-o", "value", target))
	if res["root uuid"] != ptuuid {
		t.Errorf("root uuid %v, blkid PTUUID %s", res["root uuid"], ptuuid)
	}
	if !strings.Contains(sh(t, "sgdisk", "-p", target), "config-2") {
		t.Error("sgdisk -p lists no config-2 partition")
	}
	pt, err := agent.PartitionUUIDs(target)
	if err != nil {
		t.Fatal(err)
	}
	isoBytes := mustRead(t, iso)
	for _, p := range pt.Partitions {
		if p.Name == "config-2" {
			got := make([]byte, len(isoBytes))
			f, _ := os.Open(target)
			f.ReadAt(got, p.Start)
			f.Close()
			if !bytes.Equal(got, isoBytes) {
				t.Error("config-2 partition does not start with the ISO")
			}
		}
	}

	r = ta.run(t, "standby.get_partition_uuids", nil)
	var uu map[string]any
	json.Unmarshal(r.CommandResult, &uu)
	if uu["root uuid"] != ptuuid || uu["efi system partition uuid"] == nil {
		t.Errorf("get_partition_uuids %s", r.CommandResult)
	}
	r = ta.run(t, "image.install_bootloader", map[string]any{"root_uuid": ptuuid})
	if r.CommandStatus != api.CommandSucceeded || !strings.Contains(string(r.CommandResult), "install_bootloader: whole-disk") {
		t.Errorf("install_bootloader %s", r.CommandResult)
	}
}

func TestStepsOnFile(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	os.WriteFile(target, bytes.Repeat([]byte{0xAB}, 8<<20), 0o644)
	img := filepath.Join(dir, "img")
	data := make([]byte, 4<<20)
	rand.Read(data)
	os.WriteFile(img, data, 0o644)
	sum := sha256.Sum256(data)
	images := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer images.Close()
	ta := machineAgent(t, &Machine{RootDevice: target})

	r := ta.run(t, "deploy.get_deploy_steps", map[string]any{"node": map[string]any{}, "ports": []any{}})
	if !strings.Contains(string(r.CommandResult), `"step":"write_image","priority":0`) || !strings.Contains(string(r.CommandResult), `"generic_hardware_manager":"1.1"`) {
		t.Errorf("get_deploy_steps %s", r.CommandResult)
	}
	step := map[string]any{"step": "write_image", "interface": "deploy", "priority": 80, "args": map[string]any{
		"image_info": map[string]any{"urls": []string{images.URL + "/img"}, "os_hash_algo": "sha256", "os_hash_value": hex.EncodeToString(sum[:])},
	}}
	r = ta.run(t, "deploy.execute_deploy_step", map[string]any{"step": step, "node": map[string]any{}, "ports": []any{},
		"deploy_version": map[string]any{"generic_hardware_manager": "1.1"}})
	if r.CommandStatus != api.CommandSucceeded || r.CommandName != "execute_deploy_step" || !strings.Contains(string(r.CommandResult), `"deploy_step":{`) {
		t.Fatalf("execute_deploy_step %s %+v", r.CommandResult, r.CommandError)
	}
	if got := mustRead(t, target); !bytes.Equal(got[:len(data)], data) {
		t.Error("deploy step did not write the image")
	}

	r = ta.run(t, "clean.execute_clean_step", map[string]any{"step": map[string]any{"step": "erase_devices_metadata", "interface": "deploy"},
		"clean_version": map[string]any{"generic_hardware_manager": "0.9"}})
	if r.CommandStatus != api.CommandFailed || r.CommandError.Type != "VersionMismatch" {
		t.Errorf("stale clean_version: %+v", r.CommandError)
	}
	r = ta.run(t, "clean.execute_clean_step", map[string]any{"step": map[string]any{"step": "erase_devices_metadata", "interface": "deploy"}})
	if r.CommandStatus != api.CommandSucceeded || !strings.Contains(string(r.CommandResult), `"clean_step"`) {
		t.Fatalf("erase_devices_metadata %+v", r.CommandError)
	}
	got := mustRead(t, target)
	if !bytes.Equal(got[:1<<20], make([]byte, 1<<20)) || !bytes.Equal(got[len(got)-1<<20:], make([]byte, 1<<20)) {
		t.Error("first/last MiB not zeroed")
	}
	r = ta.run(t, "clean.execute_clean_step", map[string]any{"step": map[string]any{"step": "erase_devices", "interface": "deploy"}})
	if r.CommandStatus != api.CommandSucceeded || !bytes.Equal(mustRead(t, target), make([]byte, 8<<20)) {
		t.Errorf("erase_devices %+v", r.CommandError)
	}
	r = ta.run(t, "clean.execute_clean_step", map[string]any{"step": map[string]any{"step": "burnin_cpu"}})
	if r.CommandStatus != api.CommandFailed || r.CommandError.Type != "HardwareManagerMethodNotFound" {
		t.Errorf("unknown step %+v", r.CommandError)
	}
	// Invalid image_info is refused before the command starts.
	body := `{"name":"standby.prepare_image","params":{"image_info":{"urls":[]}}}`
	if code, b := ta.post(t, testToken, "true", body); code != http.StatusBadRequest || !strings.Contains(string(b), "InvalidCommandParamsError") {
		t.Errorf("bad image_info: %d %s", code, b)
	}
}

func TestDecodeConfigDrive(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("ISO BYTES"))
	zw.Close()
	enc := base64.StdEncoding.EncodeToString(gz.Bytes())
	for name, in := range map[string]string{"gzip": enc, "wrapped": enc[:10] + "\n" + enc[10:] + "\n", "plain": base64.StdEncoding.EncodeToString([]byte("ISO BYTES"))} {
		got, err := DecodeConfigDrive(in)
		if err != nil || string(got) != "ISO BYTES" {
			t.Errorf("%s: %q %v", name, got, err)
		}
	}
	if _, err := DecodeConfigDrive("not base64!"); err == nil {
		t.Error("bad base64 accepted")
	}
}

func TestCollectSystemLogs(t *testing.T) {
	logs := NewLogBuffer(64)
	logs.Write([]byte(strings.Repeat("x", 100) + "agent log tail"))
	ta := machineAgent(t, &Machine{RootDevice: "/nonexistent", Logs: logs})
	r := ta.run(t, "log.collect_system_logs", nil)
	var res map[string]string
	json.Unmarshal(r.CommandResult, &res)
	raw, err := base64.StdEncoding.DecodeString(res["system_logs"])
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("tar", "-tz")
	cmd.Stdin = bytes.NewReader(raw)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tar -tz: %v", err)
	}
	for _, f := range []string{"dmesg.txt", "ironwork-agent.log", "cmdline.txt", "ip_addr.txt"} {
		if !strings.Contains(string(out), f) {
			t.Errorf("archive lacks %s: %s", f, out)
		}
	}
	if got := string(logs.Bytes()); len(got) != 64 || !strings.HasSuffix(got, "agent log tail") {
		t.Errorf("log buffer %q", got)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPreparePartitionImage(t *testing.T) {
	needTools(t, "mkfs.ext4", "mkfs.vfat", "mtools", "sfdisk", "blkid")
	if os.Geteuid() != 0 {
		t.Skip("install_bootloader mounts the root partition: needs root")
	}
	dir := t.TempDir()
	content := filepath.Join(dir, "content", "boot", "efi", "EFI", "debian")
	os.MkdirAll(content, 0o755)
	os.WriteFile(filepath.Join(content, "grubx64.efi"), []byte("GRUB"), 0o644)
	img := filepath.Join(dir, "root.img")
	sh(t, "mkfs.ext4", "-q", "-F", "-d", filepath.Join(dir, "content"), img, "16M")
	sum := sha256.Sum256(mustRead(t, img))
	target := filepath.Join(dir, "target")
	os.WriteFile(target, nil, 0o644)
	os.Truncate(target, 1<<30)
	sysRoot := t.TempDir()
	vars := filepath.Join(sysRoot, "sys", "firmware", "efi", "efivars")
	os.MkdirAll(vars, 0o755)
	images := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer images.Close()
	ta := machineAgent(t, &Machine{RootDevice: target, SysRoot: sysRoot, EFIVars: vars})
	info := func(extra map[string]any) map[string]any {
		ii := map[string]any{"id": "root.img", "urls": []string{images.URL + "/root.img"},
			"checksum": hex.EncodeToString(sum[:]), "image_type": "partition", "root_mb": 0, "swap_mb": 8,
			"ephemeral_mb": 16, "ephemeral_format": "ext4", "deploy_boot_mode": "uefi"}
		for k, v := range extra {
			ii[k] = v
		}
		return map[string]any{"image_info": ii}
	}
	for _, bad := range []struct {
		extra map[string]any
		want  string
	}{
		{map[string]any{"root_mb": nil}, "image_info.root_mb is required for a partition image"},
		{map[string]any{"disk_label": "sun"}, `is neither gpt nor msdos`},
		{map[string]any{"root_mb": -1}, "is not a non-negative whole number of MiB"},
		{map[string]any{"image_type": "lvm"}, `is neither whole-disk nor partition`},
	} {
		ii := info(bad.extra)
		if v, ok := bad.extra["root_mb"]; ok && v == nil {
			delete(ii["image_info"].(map[string]any), "root_mb")
		}
		body, _ := json.Marshal(api.AgentCommand{Name: "standby.prepare_image", Params: ii})
		code, b := ta.post(t, testToken, "true", string(body))
		if code != http.StatusBadRequest || !strings.Contains(string(b), bad.want) {
			t.Errorf("%v: status %d %s, want 400 with %q", bad.extra, code, b, bad.want)
		}
	}
	r := ta.run(t, "standby.prepare_image", info(nil))
	if r.CommandStatus != api.CommandSucceeded {
		t.Fatalf("prepare_image %+v", r.CommandError)
	}
	var res map[string]any
	json.Unmarshal(r.CommandResult, &res)
	pt, err := agent.PartitionUUIDs(target)
	if err != nil || len(pt.Partitions) != 4 {
		t.Fatalf("partitions %+v, %v", pt, err)
	}
	rootFS := strings.TrimSpace(sh(t, "blkid", "-p", "-O", itoa(pt.Partitions[3].Start), "-s", "UUID", "-o", "value", target))
	espFS := strings.TrimSpace(sh(t, "blkid", "-p", "-O", itoa(pt.Partitions[0].Start), "-s", "UUID", "-o", "value", target))
	if res["root uuid"] != rootFS || res["efi system partition uuid"] != espFS {
		t.Fatalf("prepare_image result %s; blkid root %s ESP %s", r.CommandResult, rootFS, espFS)
	}
	r = ta.run(t, "standby.get_partition_uuids", nil)
	var uu map[string]any
	json.Unmarshal(r.CommandResult, &uu)
	if uu["root uuid"] != rootFS || uu["efi system partition uuid"] != espFS || uu["partition_table_type"] != "gpt" {
		t.Errorf("get_partition_uuids %s", r.CommandResult)
	}
	r = ta.run(t, "image.install_bootloader", map[string]any{"root_uuid": rootFS, "efi_system_part_uuid": espFS, "target_boot_mode": "uefi"})
	if r.CommandStatus != api.CommandSucceeded || !strings.Contains(string(r.CommandResult), `"boot_entry":"Boot0000"`) ||
		!strings.Contains(string(r.CommandResult), `EFI\\debian\\grubx64.efi`) {
		t.Fatalf("install_bootloader %s %+v", r.CommandResult, r.CommandError)
	}
	if out := sh(t, "mtype", "-i", target+"@@"+itoa(pt.Partitions[0].Start), "::/EFI/BOOT/BOOTX64.EFI"); out != "GRUB" {
		t.Errorf("BOOTX64.EFI holds %q", out)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
