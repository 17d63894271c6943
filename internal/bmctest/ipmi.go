package bmctest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ironwork/ironwork/internal/lockedbuf"
)

// requireTool finds a simulator's program or fails (skips only when told to), because the
// project's scripts install it (scripts/deps.sh).
func requireTool(t testing.TB, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("IRONWORK_SKIP_BMC_SIMULATORS") == "1" {
			t.Skipf("%s not installed and IRONWORK_SKIP_BMC_SIMULATORS=1", name)
		}
		t.Fatalf("%s is not installed: scripts/deps.sh installs Debian's %s (IRONWORK_SKIP_BMC_SIMULATORS=1 skips these tests)", name, pkg)
	}
	return path
}

// freeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago.
func freeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// IPMISim is OpenIPMI's ipmi_sim serving IPMI 2.0 on loopback, with a chassis whose power
// and boot device live in files, set through ipmi_sim's chassis_control hook.
type IPMISim struct {
	Port           int
	User, Password string
	dir            string
}

// NewIPMISim starts ipmi_sim and stops it when the test ends.
func NewIPMISim(t testing.TB) *IPMISim {
	t.Helper()
	return newIPMISim(t, "")
}

// newIPMISim starts ipmi_sim with extra emulator commands run before the BMC is enabled.
func newIPMISim(t testing.TB, extraEmu string) *IPMISim {
	t.Helper()
	bin := requireTool(t, "ipmi_sim", "openipmi")
	s := &IPMISim{Port: freeUDPPort(t), User: "admin", Password: "password", dir: t.TempDir()}
	hook := filepath.Join(s.dir, "chassis.sh")
	// ipmi_sim runs the hook as "<hook> <mc> get <parm>..." and "<hook> <mc> set <parm> <value>...".
	script := `#!/bin/sh
d=$(dirname "$0")
shift
op=$1; shift
if [ "$op" = get ]; then
  for p in "$@"; do
    case $p in
      power) echo "power:$(cat "$d/power" 2>/dev/null || echo 0)" ;;
      boot) echo "boot:$(cat "$d/boot" 2>/dev/null || echo default)" ;;
      *) echo "invalid parm $p"; exit 1 ;;
    esac
  done
  exit 0
fi
while [ $# -ge 2 ]; do
  case $1 in
    power) echo "$2" > "$d/power" ;;
    reset) echo reset >> "$d/events" ;;
    boot) echo "$2" > "$d/boot" ;;
    *) echo "invalid parm $1"; exit 1 ;;
  esac
  shift 2
done
`
	lan := func(port int) string {
		return fmt.Sprintf(`name "ironworktest"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 %d
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "%s 0x20"
  user 1 true  ""      "test" user  10 none md2 md5 straight
  user 2 true  "%s" "%s" admin 10 none md2 md5 straight
`, port, hook, s.User, s.Password)
	}
	emu := "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nsel_enable 0x20 1000 0x0a\n" + extraEmu + "mc_enable 0x20\n"
	for name, body := range map[string]string{"chassis.sh": script, "cmd.emu": emu} {
		if err := os.WriteFile(filepath.Join(s.dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s.Port = startUDPDaemon(t, "ipmi_sim", func(port int) *exec.Cmd {
		if err := os.WriteFile(filepath.Join(s.dir, "lan.conf"), []byte(lan(port)), 0o644); err != nil {
			t.Fatal(err)
		}
		return exec.Command(bin, "-c", filepath.Join(s.dir, "lan.conf"), "-f", filepath.Join(s.dir, "cmd.emu"),
			"-s", filepath.Join(s.dir, "state"), "-n")
	}, s.Port)
	return s
}

// Power reports the simulated chassis power: "1" on, "0" off.
func (s *IPMISim) Power() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "power"))
	if p := strings.TrimSpace(string(b)); p != "" {
		return p
	}
	return "0"
}

// FakeBMC is pyghmi's fakebmc (python3-pyghmi), a second IPMI 2.0 implementation.
type FakeBMC struct {
	Port           int
	User, Password string
}

// NewFakeBMC starts pyghmi's fakebmc and stops it when the test ends.
func NewFakeBMC(t testing.TB) *FakeBMC {
	t.Helper()
	bin := requireTool(t, "fakebmc", "python3-pyghmi")
	b := &FakeBMC{Port: freeUDPPort(t), User: "admin", Password: "password"}
	b.Port = startUDPDaemon(t, "fakebmc", func(port int) *exec.Cmd {
		return exec.Command("/usr/bin/python3", bin, "--port", fmt.Sprint(port))
	}, b.Port)
	return b
}

// startUDPDaemon starts the BMC simulator command(port) returns, first on port, and waits until
// it listens there; it is stopped when the test ends. The port was free when it was picked,
// but a client socket of a test running beside this one may have been given it since: when
// the simulator exits or does not listen within 30 s, it is tried again on another free port,
// three times in all. It returns the port it listens on.
func startUDPDaemon(t testing.TB, name string, command func(port int) *exec.Cmd, port int) int {
	t.Helper()
	var why []string
	for attempt := 1; attempt <= 3; attempt++ {
		if attempt > 1 {
			port = freeUDPPort(t)
		}
		out := &lockedbuf.Buffer{}
		cmd := command(port)
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		stop := func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if err := waitUDP(cmd.Process.Pid, port, exited); err != nil {
			stop()
			why = append(why, fmt.Sprintf("port %d: %v:\n%s", port, err, out.String()))
			continue
		}
		t.Cleanup(stop)
		return port
	}
	t.Fatalf("%s did not start:\n%s", name, strings.Join(why, "\n"))
	return 0
}

// waitUDP waits (at most 30 s) until process pid has a UDP socket bound to port, by reading
// the kernel's socket tables and the process's file descriptors (a socket of another process
// on the same port does not count), or until exited is closed.
func waitUDP(pid, port int, exited <-chan struct{}) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if listensUDP(pid, port) {
			time.Sleep(100 * time.Millisecond) // bound is not yet serving: a little slack
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("exited before it listened")
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("not listening after 30 s")
}

// listensUDP reports whether process pid holds a UDP socket whose local port is port.
func listensUDP(pid, port int) bool {
	inodes := map[string]bool{}
	want := fmt.Sprintf(":%04X", port)
	for _, table := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
			f := strings.Fields(line)
			if len(f) > 9 && strings.HasSuffix(f[1], want) {
				inodes["socket:["+f[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return false
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false
	}
	for _, fd := range fds {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && inodes[l] {
			return true
		}
	}
	return false
}

// LossyUDP is a UDP relay on loopback in front of a BMC that drops datagrams: the first n
// requests it sees (SetDrop), or every one (SetDropAll). Tests point a client at Port.
type LossyUDP struct {
	Port    int
	mu      sync.Mutex
	drop    int
	dropAll bool
	dropped int
}

// SetDrop makes the relay drop the next n requests.
func (l *LossyUDP) SetDrop(n int) { l.mu.Lock(); l.drop, l.dropped = n, 0; l.mu.Unlock() }

// SetDropAll makes the relay drop every request.
func (l *LossyUDP) SetDropAll(all bool) { l.mu.Lock(); l.dropAll = all; l.mu.Unlock() }

// Dropped reports how many requests the relay dropped.
func (l *LossyUDP) Dropped() int { l.mu.Lock(); defer l.mu.Unlock(); return l.dropped }

// NewLossyUDP relays 127.0.0.1:<Port> to target until the test ends.
func NewLossyUDP(t testing.TB, target int) *LossyUDP {
	t.Helper()
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: target})
	if err != nil {
		t.Fatal(err)
	}
	l := &LossyUDP{Port: front.LocalAddr().(*net.UDPAddr).Port}
	var client *net.UDPAddr
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := front.ReadFromUDP(buf)
			if err != nil {
				return
			}
			l.mu.Lock()
			client = from
			drop := l.dropAll || l.dropped < l.drop
			if drop {
				l.dropped++
			}
			l.mu.Unlock()
			if !drop {
				back.Write(buf[:n])
			}
		}
	}()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, err := back.Read(buf)
			if err != nil {
				return
			}
			l.mu.Lock()
			to := client
			l.mu.Unlock()
			if to != nil {
				front.WriteToUDP(buf[:n], to)
			}
		}
	}()
	t.Cleanup(func() { front.Close(); back.Close() })
	return l
}
