package lab_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ironwork/ironwork/internal/lab"
	"github.com/ironwork/ironwork/internal/lab/testimage"
	"github.com/ironwork/ironwork/internal/netns"
)

// TestLabRescue deploys the test image on two QEMU machines behind Ironwork's vbmc (SeaBIOS
// over IPMI, OVMF over Redfish) and then, for both at once,
// rescues it with the agent rescue interface and a password, logs in as the rescue user over
// the machine's serial console (a wrong password first, which is refused), mounts the
// instance's disk and lists it, logs out, unrescues, and sees the instance boot again from a
// disk that the rescue did not change.
func TestLabRescue(tt *testing.T) {
	t := newLabT(tt)
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and taps")
	}
	kernel := lab.FindKernel()
	if err := lab.Check(kernel); err != nil {
		t.Skip(err)
	}
	if out, err := exec.Command("file", "-L", "/bin/busybox").Output(); err != nil || !bytes.Contains(out, []byte("statically linked")) {
		t.Skip("the rescue ramdisk needs a static /bin/busybox (Debian package busybox-static; scripts/deps.sh)")
	}
	t.Parallel() // two labs at a time (scripts/test.sh: -parallel 2)
	ironworkBin, agentBin := labBinaries(t)
	dir := filepath.Join(t.TempDir(), "lab")
	ns := fmt.Sprintf("iwlabr-%d", os.Getpid()%10000)
	var logs bytes.Buffer
	start := time.Now()
	runningLabs.track(t, dir)
	st, err := lab.Up(context.Background(), lab.Options{Dir: dir, Netns: ns, Subnet: "10.216.0", Ironwork: ironworkBin,
		Agent: agentBin, KernelDir: kernel, Cache: labCache(), CallbackTimeout: 4 * time.Minute, Log: &logs, Rescue: true,
		Nodes: []lab.NodeSpec{{Name: "r-bios-ipmi", Firmware: "bios", Power: "ipmi"}, {Name: "r-uefi-redfish", Firmware: "uefi", Power: "redfish"}}})
	t.Cleanup(func() {
		if err := lab.Down(dir, nil); err != nil {
			t.Errorf("lab down: %v", err)
		}
		if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), ns) {
			t.Errorf("network namespace %s is left after down", ns)
		}
	})
	if err != nil {
		t.Logf("lab up's log:\n%s", logs.String())
		t.Fatalf("lab up: %v", err)
	}
	t.Logf("lab up (deploy and rescue ramdisks, image, namespace, server, BMC, enrolment): %.1f s", time.Since(start).Seconds())
	for _, f := range []string{"ironwork-deploy.initramfs", "ironwork-rescue.initramfs"} {
		if fi, err := os.Stat(filepath.Join(dir, "ramdisk", f)); err == nil {
			t.Logf("%s: %.1f MiB", f, float64(fi.Size())/(1<<20))
		}
	}
	defer t.dumpIfFailed(dir, 60, "serve.log", "vbmc.log", st.Nodes[0].Name+".serial.log", st.Nodes[1].Name+".serial.log")
	ctx := context.Background()
	c := st.Client()

	// Deploy both at once (no cleaning: this test is about rescue).
	var names []string
	for _, n := range st.Nodes {
		names = append(names, n.Name)
		if err := c.Do(ctx, http.MethodPatch, "/v1/nodes/"+n.UUID, []map[string]any{{"op": "replace", "path": "/automated_clean", "value": false}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	res := lab.Cycle(ctx, st, names, lab.CycleOptions{Timeout: 6 * time.Minute, SkipUndeploy: true})
	for _, r := range res {
		for _, p := range r.Phases {
			t.Logf("%s: %-40s %6.1f s", r.Node, p.Name, p.Duration.Seconds())
		}
		if r.Err != nil {
			t.Fatalf("deploy %s: %v", r.Node, r.Err)
		}
	}
	// Then rescue both at once (each on its own console, disk and address).
	var wg sync.WaitGroup
	for _, n := range st.Nodes {
		wg.Go(func() { t.Run(n.Name, func(t *labT) { rescueAndBack(t, st, n) }) })
	}
	wg.Wait()
	t.Logf("whole test: %.1f s", time.Since(start).Seconds())
}

// rescueAndBack rescues a deployed lab node, logs in on its serial console and over SSH,
// unrescues it and checks the instance boots again from its unchanged disk.
func rescueAndBack(t testing.TB, st *lab.State, n lab.Node) {
	ctx := context.Background()
	c := st.Client()
	dir, ns := st.Dir, st.Netns
	phase := func(name string, begin time.Time) { t.Logf("%-40s %6.1f s", name, time.Since(begin).Seconds()) }
	before := diskDigest(t, n.Disk)

	// Rescue. The password has a space in it, which Ironic allows.
	const password = "Rescue me 7"
	begin := time.Now()
	if err := lab.ProvisionVerb(ctx, c, n.UUID, "rescue", map[string]any{"rescue_password": password}); err != nil {
		t.Fatalf("rescue: %v", err)
	}
	node, err := lab.WaitState(ctx, c, n.UUID, "rescue", 5*time.Minute, nil)
	if err != nil {
		t.Fatalf("rescue: %v", err)
	}
	phase("rescue (to state rescue)", begin)
	if ii, _ := node["instance_info"].(map[string]any); strings.Contains(fmt.Sprint(ii), password) {
		t.Errorf("the API shows the rescue password: %v", ii)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "serve.log")); bytes.Contains(b, []byte(password)) {
		t.Error("the server's log holds the rescue password")
	}

	// Log in over the serial console.
	begin = time.Now()
	con, err := dialConsole(n.SerialSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer con.Close()
	login := func(pw string) {
		con.sendUntil(t, "\r", "login:", 90*time.Second)
		con.send(t, "rescue\r")
		con.expect(t, "Password:", 30*time.Second)
		con.send(t, pw+"\r")
	}
	login("not the password")
	con.expect(t, "Login incorrect", 30*time.Second)
	phase("wrong password refused", begin)
	login(password)
	con.send(t, "echo LOGGED-''IN-AS-$LOGNAME-$(id -u)\r")
	con.expect(t, "LOGGED-IN-AS-rescue-0", 30*time.Second)
	phase("logged in as rescue", begin)
	con.send(t, "mount -o ro /dev/vda1 /mnt && ls /mnt && mount | grep /mnt; echo MOUNT-''DONE-$?\r")
	out := con.expect(t, "MOUNT-DONE-", 60*time.Second)
	if !strings.Contains(out, "vmlinuz") || !strings.Contains(out, "initrd.img") || !strings.Contains(out, "/dev/vda1 on /mnt") {
		t.Errorf("the instance's disk as the rescue user sees it:\n%s", out)
	}
	con.send(t, "umount /mnt; echo UMOUNT-''DONE-$?\r")
	con.expect(t, "UMOUNT-DONE-0", 30*time.Second)
	// The rescue ramdisk's address on the provisioning network, for SSH.
	con.send(t, "echo ADDR-''BEGIN; ip -4 addr show | grep inet; echo ADDR-''END\r")
	con.expect(t, "ADDR-BEGIN", 30*time.Second)
	addrs := con.expect(t, "ADDR-END", 30*time.Second)
	var ip string
	for _, f := range strings.Fields(addrs) {
		if a, _, ok := strings.Cut(f, "/"); ok && strings.HasPrefix(a, st.Subnet+".") {
			ip = a
		}
	}
	con.send(t, "exit\r")
	con.expect(t, "login:", 30*time.Second)
	phase("mount, ls, umount, log out", begin)
	t.Logf("what the rescue user saw:\n%s", out)
	con.Close()

	// The same over SSH (dropbear in the rescue ramdisk), from the provisioning network.
	if _, err := os.Stat("/usr/sbin/dropbear"); err != nil {
		t.Log("no SSH check: dropbear is not installed (Debian package dropbear-bin)")
	} else if ip == "" {
		t.Errorf("the rescue system showed no address in %s.0/24:\n%s", st.Subnet, addrs)
	} else {
		begin = time.Now()
		if _, err := sshRun(ctx, ns, ip, "not the password", "id -u"); err == nil {
			t.Error("SSH accepted a wrong password")
		}
		out, err := sshRun(ctx, ns, ip, password, "id -u && mount -o ro /dev/vda1 /mnt && ls /mnt && umount /mnt")
		if err != nil || !strings.HasPrefix(out, "0\n") || !strings.Contains(out, "vmlinuz") {
			t.Errorf("SSH as rescue to %s: %q, %v", ip, out, err)
		}
		phase("SSH: wrong password refused, mount, ls", begin)
	}

	// Unrescue: the instance boots again from its disk, unchanged.
	begin = time.Now()
	serialFrom := fileSizeOf(n.Serial)
	if err := lab.ProvisionVerb(ctx, c, n.UUID, "unrescue", nil); err != nil {
		t.Fatalf("unrescue: %v", err)
	}
	node, err = lab.WaitState(ctx, c, n.UUID, "active", 3*time.Minute, nil)
	if err != nil {
		t.Fatalf("unrescue: %v", err)
	}
	phase("unrescue (to state active)", begin)
	if ii, _ := node["instance_info"].(map[string]any); ii["hashed_rescue_password"] != nil {
		t.Errorf("instance_info keeps the rescue password's hash after unrescue: %v", ii)
	}
	line, err := lab.WaitSerial(ctx, n.Serial, serialFrom, testimage.Marker, 3*time.Minute)
	if err != nil {
		t.Fatalf("the instance after unrescue: %v", err)
	}
	phase("instance booted from disk", begin)
	t.Logf("after unrescue the instance printed %q", line)
	if after := diskDigest(t, n.Disk); after != before {
		t.Errorf("the instance's disk changed during the rescue: %s before, %s after", before, after)
	}
}

// sshRun runs cmd as the rescue user over SSH with a password, from inside the lab's namespace.
func sshRun(ctx context.Context, ns, ip, password, cmd string) (string, error) {
	dial := netns.Dialer(ns)
	var conn net.Conn
	var err error
	for i := 0; i < 20; i++ { // dropbear starts with the getty; give it a few seconds
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err = dial(dctx, "tcp", net.JoinHostPort(ip, "22"))
		cancel()
		if err == nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		return "", err
	}
	cfg := &ssh.ClientConfig{User: "rescue", Auth: []ssh.AuthMethod{ssh.Password(password)},
		// The host key is made at the rescue system's first connection: nothing to pin it to.
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 30 * time.Second}
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	c, chans, reqs, err := ssh.NewClientConn(conn, ip+":22", cfg)
	if err != nil {
		conn.Close()
		return "", err
	}
	client := ssh.NewClient(c, chans, reqs)
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return "", err
	}
	defer sess.Close()
	out, err := sess.CombinedOutput(cmd)
	return string(out), err
}

// diskDigest hashes the parts of a lab disk that hold data: the image at its start and the
// config drive at its end.
func diskDigest(t testing.TB, path string) string {
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
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, 96<<20)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(h, io.NewSectionReader(f, fi.Size()-(128<<20), 128<<20)); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func fileSizeOf(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// console is a connection to a machine's serial socket, with what it printed since.
type console struct {
	conn net.Conn
	mu   sync.Mutex
	buf  bytes.Buffer
	seen int // bytes of buf already matched by expect
}

func dialConsole(path string) (*console, error) {
	conn, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("connect to the serial console %s: %w", path, err)
	}
	c := &console{conn: conn}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := conn.Read(b)
			c.mu.Lock()
			c.buf.Write(b[:n])
			c.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return c, nil
}

func (c *console) Close() error { return c.conn.Close() }

func (c *console) send(t testing.TB, s string) {
	t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.conn, s); err != nil {
		t.Fatalf("type on the serial console: %v", err)
	}
}

// find returns what the console printed up to and including marker's line, once it did.
func (c *console) find(marker string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.buf.Bytes()[c.seen:]
	i := bytes.Index(b, []byte(marker))
	if i < 0 {
		return "", false
	}
	end := i + len(marker)
	if j := bytes.IndexByte(b[end:], '\n'); j >= 0 {
		end += j + 1
	}
	out := string(b[:end])
	c.seen += end
	return out, true
}

// expect waits, bounded, for marker and returns the output up to it.
func (c *console) expect(t testing.TB, marker string, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if out, ok := c.find(marker); ok {
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.mu.Lock()
	tail := c.buf.String()[c.seen:]
	c.mu.Unlock()
	t.Fatalf("no %q on the serial console within %s; it printed:\n%s", marker, within, tail)
	return ""
}

// sendUntil types s every few seconds until marker appears (a getty prints its prompt again
// for each line).
func (c *console) sendUntil(t testing.TB, s, marker string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		c.send(t, s)
		for i := 0; i < 30; i++ {
			if _, ok := c.find(marker); ok {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Fatalf("no %q on the serial console within %s", marker, within)
}
