package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ironwork/ironwork/api"
)

const (
	testNode  = "4a1b8c6e-0d3f-4b7a-9c2e-5f6a7b8c9d0e"
	testToken = "tok-0123456789abcdef"
	imageSize = 16 << 20
)

// fakeIronic plays the two Ironic endpoints the agent calls and serves images.
type fakeIronic struct {
	mu         sync.Mutex
	lookups    []*http.Request
	heartbeats []heartbeat
	beat       chan heartbeat
}

type heartbeat struct {
	at      time.Time
	version string
	body    api.HeartbeatRequest
}

func (f *fakeIronic) handler(images string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/lookup", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.lookups = append(f.lookups, r)
		f.mu.Unlock()
		json.NewEncoder(w).Encode(api.LookupResponse{
			Node:   map[string]any{"uuid": testNode, "properties": map[string]any{}},
			Config: api.LookupConfig{HeartbeatTimeout: 60, AgentToken: testToken, AgentTokenRequired: true},
		})
	})
	mux.HandleFunc("POST /v1/heartbeat/{node}", func(w http.ResponseWriter, r *http.Request) {
		var hb api.HeartbeatRequest
		if r.PathValue("node") != testNode || json.NewDecoder(r.Body).Decode(&hb) != nil {
			http.Error(w, "bad heartbeat", http.StatusBadRequest)
			return
		}
		h := heartbeat{at: time.Now(), version: r.Header.Get("X-OpenStack-Ironic-API-Version"), body: hb}
		f.mu.Lock()
		f.heartbeats = append(f.heartbeats, h)
		f.mu.Unlock()
		select {
		case f.beat <- h:
		default:
		}
		w.WriteHeader(http.StatusAccepted)
	})
	mux.Handle("GET /images/", http.StripPrefix("/images/", http.FileServer(http.Dir(images))))
	return mux
}

// waitBeat returns the next heartbeat matching ok, failing after timeout.
func (f *fakeIronic) waitBeat(t *testing.T, timeout time.Duration, ok func(heartbeat) bool) heartbeat {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case h := <-f.beat:
			if ok(h) {
				return h
			}
		case <-deadline:
			t.Fatalf("no matching heartbeat within %s", timeout)
		}
	}
}

// makeImages writes a raw GPT image (random data in places, holes elsewhere), its qcow2
// form and qemu-img's raw conversion of the qcow2.
func makeImages(t *testing.T, dir string) {
	t.Helper()
	raw := make([]byte, imageSize)
	for _, off := range []int{1 << 20, 3 << 20, 9 << 20, 15 << 20} {
		rand.Read(raw[off : off+256<<10])
	}
	if err := os.WriteFile(filepath.Join(dir, "disk.raw"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("sgdisk"); err == nil {
		runTool(t, "sgdisk", "-n", "1:2048:+4M", "-t", "1:ef00", "-n", "2:0:0", filepath.Join(dir, "disk.raw"))
	}
	runTool(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", filepath.Join(dir, "disk.raw"), filepath.Join(dir, "disk.qcow2"))
	runTool(t, "qemu-img", "convert", "-f", "qcow2", "-O", "raw", filepath.Join(dir, "disk.qcow2"), filepath.Join(dir, "expected.raw"))
}

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// localMACSet is what the lookup must carry: this machine's Ethernet NICs.
func localMACSet(t *testing.T) []string {
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var macs []string
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback == 0 && len(ifc.HardwareAddr) == 6 {
			macs = append(macs, ifc.HardwareAddr.String())
		}
	}
	sort.Strings(macs)
	return macs
}

type agentClient struct {
	base string
}

func (c agentClient) command(t *testing.T, name string, params map[string]any, token string, wait bool) (int, api.CommandResult) {
	t.Helper()
	body, _ := json.Marshal(api.AgentCommand{Name: name, Params: params})
	q := url.Values{"agent_token": {token}, "wait": {fmt.Sprint(wait)}}
	resp, err := http.Post(c.base+"/v1/commands/?"+q.Encode(), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r api.CommandResult
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
	}
	return resp.StatusCode, r
}

// poll waits (bounded) for a command to leave RUNNING.
func (c agentClient) poll(t *testing.T, id string) api.CommandResult {
	t.Helper()
	for i := 0; i < 600; i++ {
		resp, err := http.Get(c.base + "/v1/commands/" + id)
		if err != nil {
			t.Fatal(err)
		}
		var r api.CommandResult
		err = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if r.CommandStatus != api.CommandRunning {
			return r
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("command %s still running after 60 s", id)
	return api.CommandResult{}
}

func TestAgentProcess(t *testing.T) {
	for _, tool := range []string{"go", "qemu-img"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian: qemu-utils)", tool)
		}
	}
	bin := buildAgent(t)
	dir := t.TempDir()
	makeImages(t, dir)
	fi := &fakeIronic{beat: make(chan heartbeat, 64)}
	ironic := httptest.NewServer(fi.handler(dir))
	defer ironic.Close()

	target := filepath.Join(dir, "target.img")
	if err := os.WriteFile(target, bytes.Repeat([]byte{0xAB}, imageSize), 0o644); err != nil {
		t.Fatal(err)
	}
	cmdline := filepath.Join(dir, "cmdline")
	os.WriteFile(cmdline, []byte("BOOT_IMAGE=/vmlinuz console=ttyS0\n"), 0o644)
	stderr := &lockedWriter{w: &bytes.Buffer{}}
	proc := exec.Command(bin, "--api-url", ironic.URL, "--listen", "127.0.0.1:0", "--root-device", target,
		"--cmdline", cmdline, "--node", testNode, "--no-poweroff", "--lookup-timeout", "30s")
	proc.Stderr = stderr
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- proc.Wait() }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			proc.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("agent stderr:\n%s", stderr.String())
		}
	})

	// First heartbeat: the callback URL, the token from lookup, our version, "start".
	first := fi.waitBeat(t, 20*time.Second, func(heartbeat) bool { return true })
	if first.body.AgentToken != testToken || first.body.AgentStatus != "start" ||
		!strings.HasPrefix(first.body.AgentVersion, "ironwork-agent ") || first.version != "1.68" {
		t.Errorf("first heartbeat %+v (API version %q)", first.body, first.version)
	}
	cb, err := url.Parse(first.body.CallbackURL)
	if err != nil || cb.Scheme != "http" || !strings.HasPrefix(cb.Host, "127.0.0.1:") {
		t.Fatalf("callback URL %q", first.body.CallbackURL)
	}
	fi.mu.Lock()
	lk := fi.lookups[0]
	fi.mu.Unlock()
	gotMACs := strings.Split(lk.URL.Query().Get("addresses"), ",")
	sort.Strings(gotMACs)
	if want := localMACSet(t); strings.Join(gotMACs, ",") != strings.Join(want, ",") {
		t.Errorf("lookup addresses %v, want this machine's NICs %v", gotMACs, want)
	}
	if lk.URL.Query().Get("node_uuid") != testNode || lk.Header.Get("X-OpenStack-Ironic-API-Version") != "1.68" {
		t.Errorf("lookup query %q headers %v", lk.URL.RawQuery, lk.Header)
	}
	agent := agentClient{base: first.body.CallbackURL}

	if code, _ := agent.command(t, "standby.sync", nil, "wrong", true); code != http.StatusUnauthorized {
		t.Errorf("wrong token: status %d", code)
	}

	for _, tc := range []struct{ file, format, expected string }{
		{"disk.raw", "raw", "disk.raw"},
		{"disk.qcow2", "qcow2", "expected.raw"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			params := map[string]any{"image_info": map[string]any{
				"id": "img-" + tc.format, "urls": []string{ironic.URL + "/images/" + tc.file},
				"os_hash_algo": "sha256", "os_hash_value": sha256File(t, filepath.Join(dir, tc.file)),
				"disk_format": tc.format, "image_type": "whole-disk",
			}, "configdrive": ""}
			code, r := agent.command(t, "standby.prepare_image", params, testToken, false)
			if code != http.StatusOK || r.CommandStatus != api.CommandRunning || r.CommandName != "prepare_image" {
				t.Fatalf("prepare_image: status %d %+v", code, r)
			}
			final := agent.poll(t, r.ID)
			if final.CommandStatus != api.CommandSucceeded {
				t.Fatalf("prepare_image %s: %+v %+v", tc.format, final, final.CommandError)
			}
			var res map[string]any
			json.Unmarshal(final.CommandResult, &res)
			if want, err := exec.Command("blkid", "-p", "-s", "PTUUID", "-o", "value", filepath.Join(dir, tc.expected)).Output(); err == nil && len(bytes.TrimSpace(want)) > 0 {
				if res["root uuid"] != string(bytes.TrimSpace(want)) {
					t.Errorf("root uuid %v, blkid says %s", res["root uuid"], want)
				}
			}
			if !strings.Contains(fmt.Sprint(res["result"]), "written to device "+target) {
				t.Errorf("result %v", res)
			}
			got, _ := os.ReadFile(target)
			want, _ := os.ReadFile(filepath.Join(dir, tc.expected))
			if !bytes.Equal(got, want) {
				t.Errorf("target differs from qemu-img convert -O raw of %s", tc.file)
			}
			// The conductor hears of the end at once, not a heartbeat period (10 s) later.
			fi.waitBeat(t, 5*time.Second, func(h heartbeat) bool { return h.body.AgentStatus == "idle" })
		})
	}

	t.Run("checksum mismatch", func(t *testing.T) {
		params := map[string]any{"image_info": map[string]any{
			"urls": []string{ironic.URL + "/images/disk.raw"}, "checksum": "sha256:" + strings.Repeat("0", 64), "disk_format": "raw",
		}}
		_, r := agent.command(t, "standby.prepare_image", params, testToken, true)
		if r.CommandStatus != api.CommandFailed || r.CommandError == nil || !strings.Contains(r.CommandError.Details, "checksum mismatch") {
			t.Errorf("result %+v %+v", r, r.CommandError)
		}
	})

	t.Run("partition uuids and steps", func(t *testing.T) {
		_, r := agent.command(t, "clean.get_clean_steps", map[string]any{"node": map[string]any{}, "ports": []any{}}, testToken, false)
		if r.CommandStatus != api.CommandSucceeded || !bytes.Contains(r.CommandResult, []byte(`"step":"erase_devices_metadata","priority":99`)) {
			t.Errorf("get_clean_steps %s", r.CommandResult)
		}
		_, r = agent.command(t, "poll.get_hardware_info", nil, testToken, false)
		var inv struct {
			CPU struct{ Count int } `json:"cpu"`
		}
		if json.Unmarshal(r.CommandResult, &inv); r.CommandStatus != api.CommandSucceeded || inv.CPU.Count == 0 {
			t.Errorf("get_hardware_info %+v %s", r.CommandError, r.CommandResult)
		}
		_, r = agent.command(t, "log.collect_system_logs", nil, testToken, false)
		if r.CommandStatus != api.CommandSucceeded || !bytes.Contains(r.CommandResult, []byte(`"system_logs":"H4sI`)) {
			t.Errorf("collect_system_logs %+v", r.CommandError)
		}
	})

	// power_off with --no-poweroff: answered, then the process ends with status 0.
	code, r := agent.command(t, "standby.power_off", nil, testToken, false)
	if code != http.StatusOK {
		t.Fatalf("power_off: %d", code)
	}
	if final := agent.poll(t, r.ID); final.CommandStatus != api.CommandSucceeded {
		t.Errorf("power_off %+v", final)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if errors.As(err, &ee) || err != nil {
			t.Errorf("agent exit: %v", err)
		}
		exited <- err
	case <-time.After(15 * time.Second):
		t.Fatal("agent still running 15 s after power_off")
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprint(l.w)
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestAdvertiseURLBracketsIPv6: the callback URL the agent advertises names IPv6 literals in
// brackets, whether given (ipa-advertise-host, with or without brackets) or found from the
// route to an API at an IPv6 address (loopback here), and parses back to the same host.
func TestAdvertiseURLBracketsIPv6(t *testing.T) {
	listen := &net.TCPAddr{IP: net.IPv6zero, Port: 9999}
	for _, tc := range []struct {
		api, advertise, want, host string
	}{
		{"http://[fd97::1]:6385", "2001:db8::5", "http://[2001:db8::5]:9999", "2001:db8::5"},
		{"http://[fd97::1]:6385", "[2001:db8::5]", "http://[2001:db8::5]:9999", "2001:db8::5"},
		{"http://10.0.0.1:6385", "10.0.0.5", "http://10.0.0.5:9999", "10.0.0.5"},
		{"http://[::1]:6385", "", "http://[::1]:9999", "::1"},
		{"http://[::1]", "", "http://[::1]:9999", "::1"},
		{"http://127.0.0.1:6385", "", "http://127.0.0.1:9999", "127.0.0.1"},
		{"http://[fd97::1]:6385", "fe80::1%eth0", "http://[fe80::1%25eth0]:9999", "fe80::1%eth0"},
	} {
		got, err := advertiseURL(Config{APIURL: tc.api, AdvertiseHost: tc.advertise}, listen)
		if err != nil {
			t.Errorf("api %s advertise %q: %v", tc.api, tc.advertise, err)
			continue
		}
		if got != tc.want {
			t.Errorf("api %s advertise %q: %s, want %s", tc.api, tc.advertise, got, tc.want)
		}
		u, err := url.Parse(got)
		if err != nil || u.Hostname() != tc.host || u.Port() != "9999" {
			t.Errorf("%s parses to host %q port %q (%v), want %q", got, u.Hostname(), u.Port(), err, tc.host)
		}
	}
}
