package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/lockedbuf"
	"github.com/ironwork/ironwork/internal/server"
	"golang.org/x/sys/unix"
)

// hostMAC is a MAC address of this machine: the agent, run here as a process, looks itself
// up by the machine's NICs, so the test node's port must carry one of them.
func hostMAC(t *testing.T) string {
	t.Helper()
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 && len(i.HardwareAddr) == 6 {
			return i.HardwareAddr.String()
		}
	}
	t.Skip("this machine has no NIC with a MAC address for the agent to look itself up by")
	return ""
}

// buildAgent returns the ironwork-agent binary, built once per run (builtBinary).
func buildAgent(t *testing.T) string {
	t.Helper()
	return builtBinary(t, "../../cmd/ironwork-agent")
}

// agentProc runs the agent as a process writing to disk, until it exits or the test ends.
type agentProc struct {
	cmd  *exec.Cmd
	out  *lockedbuf.Buffer
	done chan error
}

func startAgent(t *testing.T, bin, apiURL, disk string, extra ...string) *agentProc {
	t.Helper()
	port := strings.TrimPrefix(freeAddr(t), "127.0.0.1:")
	p := &agentProc{out: &lockedbuf.Buffer{}, done: make(chan error, 1)}
	args := []string{"--api-url", apiURL, "--listen", "127.0.0.1:" + port,
		"--advertise-url", "http://127.0.0.1:" + port, "--root-device", disk, "--no-poweroff", "--lookup-timeout", "60s"}
	p.cmd = exec.Command(bin, append(args, extra...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("--- agent log ---\n%s", p.out.String())
		}
	})
	return p
}

func (p *agentProc) stop() {
	select {
	case err := <-p.done: // already ended
		p.done <- err
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(10 * time.Second):
	}
}

// waitState polls a node until its provision state is want (failing at once on a failed
// state) and returns the node.
func waitState(t *testing.T, c *api.Client, uuid, want string, within time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var n map[string]any
		if err := c.Do(context.Background(), http.MethodGet, "/v1/nodes/"+uuid, nil, &n); err != nil {
			t.Fatal(err)
		}
		st, _ := n["provision_state"].(string)
		if st == want {
			return n
		}
		if strings.HasSuffix(st, "failed") && !strings.HasSuffix(want, "failed") {
			t.Fatalf("node went to %q instead of %q: %v", st, want, n["last_error"])
		}
		if time.Now().After(deadline) {
			t.Fatalf("node in %q, not %q, after %s (last_error %v)", st, want, within, n["last_error"])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func provisionVerb(t *testing.T, c *api.Client, uuid, target string) {
	t.Helper()
	for i := 0; ; i++ {
		err := c.Do(context.Background(), http.MethodPut, "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": target}, nil)
		if err == nil {
			return
		}
		if !api.IsStatus(err, http.StatusConflict) || i > 100 {
			t.Fatalf("provision %s: %v", target, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// qemuImage makes a small whole-disk image with qemu-img: a raw file with a marker and
// random data, and its qcow2 conversion.
func qemuImage(t *testing.T, dir string) (raw, qcow2 []byte) {
	t.Helper()
	qi, err := exec.LookPath("qemu-img")
	if err != nil {
		t.Skip("qemu-img is not installed (Debian package qemu-utils)")
	}
	rawPath := filepath.Join(dir, "src.raw")
	data := make([]byte, 8<<20)
	copy(data, "IRONWORK-DEPLOYED-IMAGE")
	for i := 1 << 20; i < 3<<20; i++ {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(rawPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// An MBR with one partition, so that the agent can add the config drive after it.
	if sf, err := exec.LookPath("sfdisk"); err == nil {
		cmd := exec.Command(sf, "-q", rawPath)
		cmd.Stdin = strings.NewReader("label: dos\nstart=2048, size=12288, type=83\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sfdisk: %v: %s", err, out)
		}
		if data, err = os.ReadFile(rawPath); err != nil {
			t.Fatal(err)
		}
	}
	qcowPath := filepath.Join(dir, "src.qcow2")
	if out, err := exec.Command(qi, "convert", "-f", "raw", "-O", "qcow2", rawPath, qcowPath).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v: %s", err, out)
	}
	q, err := os.ReadFile(qcowPath)
	if err != nil {
		t.Fatal(err)
	}
	return data, q
}

// TestDirectDeployWithTheAgent runs the direct deploy interface end to end against
// ironwork-agent running as a process, with a file as the node's disk: cleaning erases the
// disk's metadata, deploy writes a qcow2 image through the agent, undeploy cleans again, and
// an image with a wrong checksum fails the deploy with the reason.
func TestDirectDeployWithTheAgent(t *testing.T) {
	dir := t.TempDir()
	mac := hostMAC(t)
	raw, qcow := qemuImage(t, dir)
	agent := buildAgent(t)
	images := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "image.qcow2", time.Time{}, bytes.NewReader(qcow))
	}))
	defer images.Close()
	sum := sha256.Sum256(qcow)

	disk := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, bytes.Repeat([]byte{0xAA}, 16<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	// Room for the config drive's partition (at least 64 MiB) after the image: sparse.
	if err := os.Truncate(disk, 96<<20); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, "sqlite://"+filepath.Join(dir, "db"), func(c *server.Config) {
		c.AgentPowerOffTimeout = server.Duration{Duration: 2 * time.Second}
	})
	c := &api.Client{BaseURL: srv.URL(), Version: "1.87"}
	ctx := context.Background()
	var node map[string]any
	if err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "direct-1", "driver": "fake-hardware",
		"deploy_interface": "direct", "boot_interface": "fake",
		"instance_info": map[string]any{"image_source": images.URL + "/image.qcow2", "image_checksum": "sha256:" + hex.EncodeToString(sum[:]),
			"image_disk_format": "qcow2"}}, &node); err != nil {
		t.Fatal(err)
	}
	uuid := node["uuid"].(string)
	if err := c.Do(ctx, http.MethodPost, "/v1/ports", map[string]any{"node_uuid": uuid, "address": mac}, nil); err != nil {
		t.Fatal(err)
	}
	provisionVerb(t, c, uuid, "manage")
	waitState(t, c, uuid, "manageable", 10*time.Second)

	start := time.Now()
	provisionVerb(t, c, uuid, "provide")
	waitState(t, c, uuid, "clean wait", 10*time.Second)
	a := startAgent(t, agent, srv.URL(), disk)
	waitState(t, c, uuid, "available", 60*time.Second)
	a.stop()
	t.Logf("cleaning with the agent: %.1f s", time.Since(start).Seconds())
	b := mapDisk(t, disk)
	if !bytes.Equal(b[:1<<20], make([]byte, 1<<20)) {
		t.Fatal("cleaning left the disk's first MiB as it was")
	}

	// Deploy with a config drive in the dict form: the conductor builds the ISO, the agent
	// writes it to a config-2 partition after the image.
	start = time.Now()
	cd := map[string]any{"meta_data": map[string]any{"hostname": "direct-1.example"}, "network_data": map[string]any{"links": []any{}},
		"user_data": "#cloud-config\nhostname: direct-1\n"}
	if err := c.Do(ctx, http.MethodPut, "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": "active", "configdrive": cd}, nil); err != nil {
		t.Fatal(err)
	}
	waitState(t, c, uuid, "wait call-back", 10*time.Second)
	startAgent(t, agent, srv.URL(), disk)
	n := waitState(t, c, uuid, "active", 90*time.Second)
	t.Logf("deploy with the agent: %.1f s", time.Since(start).Seconds())
	if n["power_state"] != "power on" {
		t.Errorf("deployed node is %v", n["power_state"])
	}
	b = mapDisk(t, disk)
	// (The first sector's partition table gained the config drive's entry.)
	if !bytes.Equal(b[:446], raw[:446]) || !bytes.Equal(b[512:len(raw)], raw[512:]) {
		t.Fatal("the disk does not hold the image (compared with the raw source of the qcow2)")
	}
	checkConfigDrivePartition(t, disk, map[string]string{
		"openstack/latest/meta_data.json":    `{"hostname":"direct-1.example","name":"direct-1","uuid":"` + uuid + `"}`,
		"openstack/latest/network_data.json": `{"links":[]}`,
		"openstack/latest/user_data":         "#cloud-config\nhostname: direct-1\n",
	})
	if dii, _ := n["driver_internal_info"].(map[string]any); dii["agent_url"] != nil || dii["agent_secret_token"] != nil {
		t.Errorf("the agent's URL or token outlived the deploy: %v", dii)
	}

	start = time.Now()
	provisionVerb(t, c, uuid, "deleted")
	waitState(t, c, uuid, "clean wait", 20*time.Second)
	startAgent(t, agent, srv.URL(), disk)
	waitState(t, c, uuid, "available", 60*time.Second)
	t.Logf("undeploy and cleaning: %.1f s", time.Since(start).Seconds())
	b = mapDisk(t, disk)
	if bytes.Contains(b[:1<<20], []byte("IRONWORK-DEPLOYED-IMAGE")) {
		t.Fatal("undeploy's cleaning left the image's first MiB")
	}

	// A wrong checksum: the agent refuses the image and the node fails with the reason.
	// (Undeploy cleared instance_info, as in Ironic.)
	if err := c.Do(ctx, http.MethodPatch, "/v1/nodes/"+uuid, []map[string]any{{"op": "add", "path": "/instance_info",
		"value": map[string]any{"image_source": images.URL + "/image.qcow2", "image_checksum": "sha256:" + strings.Repeat("0", 64)}}}, nil); err != nil {
		t.Fatal(err)
	}
	provisionVerb(t, c, uuid, "active")
	waitState(t, c, uuid, "wait call-back", 10*time.Second)
	startAgent(t, agent, srv.URL(), disk)
	n = waitState(t, c, uuid, "deploy failed", 60*time.Second)
	if le := fmt.Sprint(n["last_error"]); !strings.Contains(le, "checksum") || !strings.Contains(le, strings.Repeat("0", 64)) {
		t.Errorf("last_error does not give the checksum mismatch: %s", le)
	}
	b = mapDisk(t, disk)
	if !bytes.Equal(b[:1<<20], make([]byte, 1<<20)) {
		t.Error("a failed write left a bootable first MiB")
	}
}

// mapDisk returns the contents of a test disk file, mapped read-only rather than read into
// Go's heap: the race detector leaves memory outside the heap alone, and reading a 96 MiB disk
// in cost seconds of CPU under -race, mostly its shadow memory's. The mapping follows later
// writes to the file and ends with the test; the caller must not write to it.
func mapDisk(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() == 0 {
		return nil
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatalf("map %s: %v", path, err)
	}
	t.Cleanup(func() { unix.Munmap(b) })
	return b
}

// checkConfigDrivePartition finds the partition named config-2 on the disk file with sfdisk,
// and reads the files given back from it with xorriso.
func checkConfigDrivePartition(t *testing.T, disk string, want map[string]string) {
	t.Helper()
	sf, err := exec.LookPath("sfdisk")
	x, err2 := exec.LookPath("xorriso")
	if err != nil || err2 != nil {
		t.Log("sfdisk or xorriso missing: config drive not checked")
		return
	}
	out, err := exec.Command(sf, "--json", disk).Output()
	if err != nil {
		t.Fatalf("sfdisk --json: %v", err)
	}
	var table struct {
		PartitionTable struct {
			SectorSize int64 `json:"sectorsize"`
			Partitions []struct {
				Start, Size int64
				Name        string
			}
		}
	}
	if err := json.Unmarshal(out, &table); err != nil {
		t.Fatal(err)
	}
	ss := max(table.PartitionTable.SectorSize, 512)
	parts := table.PartitionTable.Partitions
	for i, p := range parts {
		// GPT names it; on MBR it is the last partition, labelled by its ISO.
		if p.Name != "config-2" && (p.Name != "" || i != len(parts)-1) {
			continue
		}
		// Only the partition is read: the disk may be gigabytes (sparse), and reading it
		// whole cost tens of CPU seconds under -race.
		b := make([]byte, p.Size*ss)
		f, err := os.Open(disk)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.ReadAt(b, p.Start*ss)
		f.Close()
		if err != nil {
			t.Fatalf("read the config-2 partition: %v", err)
		}
		iso := filepath.Join(t.TempDir(), "cd.iso")
		if err := os.WriteFile(iso, b, 0o644); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "x")
		if out, err := exec.Command(x, "-osirrox", "on", "-indev", iso, "-extract", "/", dir).CombinedOutput(); err != nil {
			t.Fatalf("xorriso on the config-2 partition: %v: %s", err, out)
		}
		for name, w := range want {
			got, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil || string(got) != w {
				t.Errorf("config drive %s: %q (%v), want %q", name, got, err, w)
			}
		}
		return
	}
	t.Fatalf("no config-2 partition on the disk: %s", out)
}
