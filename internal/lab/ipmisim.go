package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// startIPMISim runs OpenIPMI's ipmi_sim as node i's BMC on a loopback UDP port. Its
// chassis_control hook is 'ironwork lab chassis-control DIR NAME 0x20', which starts and
// stops the node's QEMU (ChassisControl); ipmi_sim passes no device of its own, so the
// configured line carries it. ipmi_sim lacks cipher suite 17 and "Get Channel Cipher
// Suites": the node is enrolled with ipmi_cipher_suite 3.
func startIPMISim(st *State, i int, cmd []string, opts Options) error {
	bin, err := exec.LookPath("ipmi_sim")
	if err != nil {
		return errors.New("ipmi_sim is not installed: run scripts/deps.sh (Debian package openipmi)")
	}
	n := st.Nodes[i]
	port, err := freePort("udp")
	if err != nil {
		return err
	}
	n.BMCAddress = fmt.Sprintf("127.0.0.1:%d", port)
	if err := st.update(func(s *State) { s.Nodes[i] = n }); err != nil {
		return err
	}
	b, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	base := filepath.Join(st.Dir, n.Name)
	if err := os.WriteFile(base+".qemu.json", b, 0o644); err != nil {
		return err
	}
	lan := fmt.Sprintf(`name "%s"
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
  chassis_control "%s lab chassis-control %s %s 0x20"
  user 2 true  "%s" "%s" admin 10 none md2 md5 straight
`, n.Name, port, opts.Ironwork, st.Dir, n.Name, BMCUser, BMCPassword)
	emu := "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nsel_enable 0x20 1000 0x0a\nmc_enable 0x20\n"
	if err := os.WriteFile(base+".lan.conf", []byte(lan), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(base+".cmd.emu", []byte(emu), 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(base+".ipmi_sim", 0o755); err != nil {
		return err
	}
	bin, args := st.inLayout(bin, "-c", base+".lan.conf", "-f", base+".cmd.emu", "-s", base+".ipmi_sim", "-n")
	return startProc(st, "ipmi_sim-"+n.Name, bin, args...)
}

// ChassisControl is ipmi_sim's chassis_control hook for node name of the lab in dir
// ('ironwork lab chassis-control DIR NAME DEVICE get power boot | DEVICE set power 0|1 |
// DEVICE set reset 1 | DEVICE set boot pxe|default|none'; args start at DEVICE). It prints
// what get asks for, as "parm:value" lines, and appends each call to DIR/NAME.chassis.log.
func ChassisControl(dir, name string, args []string, w io.Writer) error {
	base := filepath.Join(dir, name)
	if f, err := os.OpenFile(base+".chassis.log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
		fmt.Fprintf(f, "%s %s\n", time.Now().UTC().Format(time.RFC3339Nano), strings.Join(args, " "))
		f.Close()
	}
	if len(args) < 2 {
		return errors.New("usage: DEVICE get PARM... | DEVICE set PARM VALUE...")
	}
	op, parms := args[1], args[2:]
	switch op {
	case "get":
		for _, p := range parms {
			switch p {
			case "power":
				v := 0
				if qemuRunning(base) {
					v = 1
				}
				fmt.Fprintf(w, "power:%d\n", v)
			case "boot":
				b, _ := os.ReadFile(base + ".boot")
				v := strings.TrimSpace(string(b))
				if v == "" {
					v = "default"
				}
				fmt.Fprintf(w, "boot:%s\n", v)
			default:
				return fmt.Errorf("invalid parm %s", p)
			}
		}
		return nil
	case "set":
		for ; len(parms) >= 2; parms = parms[2:] {
			switch parms[0] {
			case "power":
				if parms[1] == "1" {
					if err := qemuStart(base); err != nil {
						return err
					}
				} else {
					qemuStop(base)
				}
			case "reset":
				qemuStop(base)
				if err := qemuStart(base); err != nil {
					return err
				}
			case "boot":
				if err := os.WriteFile(base+".boot", []byte(parms[1]), 0o644); err != nil {
					return err
				}
			default:
				return fmt.Errorf("invalid parm %s", parms[0])
			}
		}
		return nil
	}
	return fmt.Errorf("bad op %s", op)
}

func qemuPID(base string) int {
	b, _ := os.ReadFile(base + ".qemu.pid")
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func qemuRunning(base string) bool {
	pid := qemuPID(base)
	return pid > 0 && alive(pid)
}

func qemuStart(base string) error {
	if qemuRunning(base) {
		return nil
	}
	b, err := os.ReadFile(base + ".qemu.json")
	if err != nil {
		return err
	}
	var cmd []string
	if err := json.Unmarshal(b, &cmd); err != nil {
		return err
	}
	order := "order=c"
	if dev, _ := os.ReadFile(base + ".boot"); strings.TrimSpace(string(dev)) == "pxe" {
		order = "once=n"
	}
	args := append(append([]string{}, cmd[1:]...), "-boot", order, "-daemonize", "-pidfile", base+".qemu.pid")
	if out, err := exec.Command(cmd[0], args...).CombinedOutput(); err != nil {
		return fmt.Errorf("start QEMU: %v: %s", err, out)
	}
	return nil
}

func qemuStop(base string) {
	if pid := qemuPID(base); pid > 0 && alive(pid) {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		for i := 0; i < 50 && alive(pid); i++ {
			time.Sleep(100 * time.Millisecond)
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	_ = os.Remove(base + ".qemu.pid")
}
