package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ironwork/ironwork/api"
)

// inNetns runs fn on an OS thread switched into the named network namespace; sockets fn
// creates stay in that namespace. The thread is discarded afterwards (never unlocked), so
// no other goroutine runs in the namespace by accident.
func inNetns(ns string, fn func()) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			done <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		fn()
		done <- nil
	}()
	if err := <-done; err != nil {
		return fmt.Errorf("enter netns %s: %w", ns, err)
	}
	return nil
}

func must(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// TestBootRamdisk boots the built ramdisk in QEMU (TCG) with a virtio NIC on a tap device in
// a network namespace made here, dnsmasq serving DHCP there, and a fake Ironic API on the
// namespace's address: the agent must configure its NIC, look up with the VM's MAC,
// heartbeat, write an image to the VM's virtio disk on command and power the VM off.
// The VM has no source of randomness (no virtio-rng, a CPU without RDRAND), as many
// machines have at boot: nothing on the way to lookup may wait for the kernel's CRNG.
func TestBootRamdisk(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and tap devices")
	}
	for _, tool := range []string{"qemu-system-x86_64", "dnsmasq", "ip", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian: qemu-system-x86 dnsmasq iproute2)", tool)
		}
	}
	kernels, _ := filepath.Glob("/var/cache/ironwork/kernel/*/vmlinuz")
	if len(kernels) == 0 {
		t.Skip("no kernel in /var/cache/ironwork/kernel (run scripts/kernel.sh)")
	}
	dir := t.TempDir()
	res := builtRamdisk(t, filepath.Dir(kernels[0]))

	ns := fmt.Sprintf("iwagent%d", os.Getpid())
	must(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	must(t, "ip", "-n", ns, "link", "set", "lo", "up")
	must(t, "ip", "-n", ns, "tuntap", "add", "dev", "tap0", "mode", "tap")
	must(t, "ip", "-n", ns, "addr", "add", "10.98.0.1/24", "dev", "tap0")
	must(t, "ip", "-n", ns, "link", "set", "tap0", "up")

	// The image: random data, no partition table, so the disk's first bytes equal it exactly.
	img := make([]byte, 8<<20)
	rand.Read(img)
	os.WriteFile(filepath.Join(dir, "image.raw"), img, 0o644)
	sum := sha256.Sum256(img)
	disk := filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 5<<30); err != nil { // sparse; root device guess needs >= 4 GiB
		t.Fatal(err)
	}

	const node = "7b3e2a10-5c4d-4e6f-8a9b-0c1d2e3f4a5b"
	var (
		mu        sync.Mutex
		lookupQ   url.Values
		callbacks = make(chan string, 16)
	)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/lookup", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lookupQ = r.URL.Query()
		mu.Unlock()
		json.NewEncoder(w).Encode(api.LookupResponse{
			Node:   map[string]any{"uuid": node, "properties": map[string]any{}},
			Config: api.LookupConfig{HeartbeatTimeout: 30, AgentToken: "boot-token", AgentTokenRequired: true},
		})
	})
	mux.HandleFunc("POST /v1/heartbeat/{node}", func(w http.ResponseWriter, r *http.Request) {
		var hb api.HeartbeatRequest
		json.NewDecoder(r.Body).Decode(&hb)
		if hb.AgentToken == "boot-token" {
			select {
			case callbacks <- hb.CallbackURL:
			default:
			}
		}
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("GET /image.raw", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(dir, "image.raw"))
	})
	var (
		ln  net.Listener
		err error
	)
	if nerr := inNetns(ns, func() { ln, err = net.Listen("tcp", "10.98.0.1:6385") }); nerr != nil || err != nil {
		t.Fatal(nerr, err)
	}
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })

	dnsmasq := exec.Command("ip", "netns", "exec", ns, "dnsmasq", "--no-daemon", "--port=0", "--interface=tap0",
		"--bind-interfaces", "--dhcp-range=10.98.0.50,10.98.0.60,255.255.255.0,10m", "--dhcp-option=option:router,10.98.0.1",
		"--no-resolv", "--no-hosts", "--no-ping", "--leasefile-ro", "--conf-file=/dev/null", "--pid-file=")
	var dnsLog bytes.Buffer // read only once dnsmasq has exited (stopDNS)
	dnsmasq.Stdout, dnsmasq.Stderr = &dnsLog, &dnsLog
	if err := dnsmasq.Start(); err != nil {
		t.Fatal(err)
	}
	stopDNS := sync.OnceFunc(func() { dnsmasq.Process.Kill(); dnsmasq.Wait() })
	t.Cleanup(stopDNS)

	serial := filepath.Join(dir, "serial.log")
	var (
		qemuLog  bytes.Buffer // read only after qemu.Wait returned (its copying is then done)
		qemuDone chan error
		booted   time.Time
		callback string
	)
	// Run after the VM's own cleanup (below, registered later): both processes have exited.
	t.Cleanup(func() {
		stopDNS()
		if t.Failed() {
			b, _ := os.ReadFile(serial)
			t.Logf("serial console:\n%s\nqemu: %s\ndnsmasq: %s", b, qemuLog.String(), dnsLog.String())
		}
	})
	// The VM is started again, once, when it ends before its first heartbeat: under TCG on a
	// loaded machine a guest has been seen to stop in its kernel's first lines, before any of
	// the agent ran (the first attempt's console is logged).
	const starts = 2
	for attempt := 1; callback == ""; attempt++ {
		qemu := exec.Command("ip", "netns", "exec", ns, "qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-m", "512",
			"-cpu", "qemu64,-rdrand", // and no virtio-rng device
			"-display", "none", "-no-reboot", "-serial", "file:"+serial, "-monitor", "none",
			"-kernel", res.KernelPath, "-initrd", res.InitramfsPath,
			"-append", "console=ttyS0 initrd=ramdisk BOOTIF=01-52-54-00-aa-bb-cc ipa-api-url=http://10.98.0.1:6385 ironwork-node="+node+" ironwork-boot-mode=bios ipa-lookup-timeout=120 panic=-1",
			"-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no", "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:aa:bb:cc",
			"-drive", "file="+disk+",if=virtio,format=raw,cache=unsafe")
		qemuLog.Reset()
		qemu.Stdout, qemu.Stderr = &qemuLog, &qemuLog
		booted = time.Now()
		if err := qemu.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- qemu.Wait() }()
		qemuDone = done
		t.Cleanup(func() {
			select {
			case err := <-done:
				done <- err
			default:
				qemu.Process.Kill()
				done <- <-done
			}
		})
		select {
		case callback = <-callbacks:
		case err := <-done:
			done <- err
			if attempt == starts {
				t.Fatalf("QEMU ended before a heartbeat, %d times: %v", attempt, err)
			}
			b, _ := os.ReadFile(serial)
			t.Logf("QEMU ended %s after its start, before a heartbeat (%v); starting it again. Its console:\n%s\nqemu: %s",
				time.Since(booted).Round(time.Second), err, b, qemuLog.String())
		case <-time.After(300 * time.Second): // TCG on 2 shared cores: a bound, not a measure
			t.Fatal("no heartbeat from the VM within 300 s")
		}
	}
	t.Logf("no RNG: first heartbeat %s after QEMU started", time.Since(booted).Round(time.Second))
	mu.Lock()
	q := lookupQ
	mu.Unlock()
	if !strings.Contains(q.Get("addresses"), "52:54:00:aa:bb:cc") || q.Get("node_uuid") != node {
		t.Errorf("lookup query %v", q)
	}
	if !strings.HasPrefix(callback, "http://10.98.0.5") || !strings.HasSuffix(callback, ":9999") {
		t.Errorf("callback URL %q: want the DHCP address and IPA's port", callback)
	}
	console, _ := os.ReadFile(serial)
	for _, line := range strings.Split(string(console), "\n") {
		if strings.Contains(line, "msg=\"dhcp lease\"") || strings.Contains(line, "random") {
			t.Logf("console: %s", strings.TrimSpace(line))
		}
	}
	// Not an assertion (the kernel decides): whether the CRNG was ready by the first heartbeat.
	t.Logf("kernel CRNG initialised before the first heartbeat: %v", bytes.Contains(console, []byte("crng init done")))
	for _, want := range []string{"modules:", "network: eth0", "lookup: http://10.98.0.1:6385"} {
		if !bytes.Contains(console, []byte(want)) {
			t.Errorf("console lacks %q", want)
		}
	}

	// Commands from inside the namespace (every connection dialled there): write the image,
	// then power off.
	client := &http.Client{Timeout: 120 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			var err error
			if nerr := inNetns(ns, func() { c, err = (&net.Dialer{}).DialContext(ctx, network, addr) }); nerr != nil {
				return nil, nerr
			}
			return c, err
		},
	}}
	post := func(name string, params map[string]any) (api.CommandResult, error) {
		body, _ := json.Marshal(api.AgentCommand{Name: name, Params: params})
		resp, err := client.Post(callback+"/v1/commands/?wait=true&agent_token=boot-token", "application/json", bytes.NewReader(body))
		if err != nil {
			return api.CommandResult{}, err
		}
		defer resp.Body.Close()
		var r api.CommandResult
		return r, json.NewDecoder(resp.Body).Decode(&r)
	}
	final, cmdErr := post("standby.prepare_image", map[string]any{"image_info": map[string]any{
		"urls": []string{"http://10.98.0.1:6385/image.raw"}, "checksum": "sha256:" + hex.EncodeToString(sum[:]), "disk_format": "raw",
	}})
	if cmdErr == nil && final.CommandStatus == api.CommandSucceeded {
		_, cmdErr = post("standby.power_off", nil)
	}
	if cmdErr != nil || final.CommandStatus != api.CommandSucceeded {
		t.Fatalf("prepare_image: %v %+v %+v", cmdErr, final, final.CommandError)
	}
	if !bytes.Contains(final.CommandResult, []byte("/dev/vda")) {
		t.Errorf("result %s: want /dev/vda", final.CommandResult)
	}
	select {
	case err := <-qemuDone:
		qemuDone <- err
		if err != nil {
			t.Errorf("QEMU exit after power off: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("VM still running 60 s after standby.power_off")
	}
	got := make([]byte, len(img))
	f, _ := os.Open(disk)
	f.ReadAt(got, 0)
	f.Close()
	if !bytes.Equal(got, img) {
		t.Error("the VM's disk does not start with the image")
	}
}
