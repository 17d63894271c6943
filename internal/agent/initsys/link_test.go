package initsys

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// linkHelperEnv, set to an interface name, makes the test binary run linkUp on that
// interface (inside the namespace 'ip netns exec' put it in, with that namespace's /sys) with
// a one-second bound, print "ok" or the error, and exit.
const linkHelperEnv = "IRONWORK_TEST_LINK_HELPER"

func linkHelper(name string) {
	if err := linkUp(context.Background(), name, time.Second); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("ok")
}

// TestLinkUpInANamespace: linkUp sets a veth up and returns once the kernel has it
// operational; with the peer down the link never becomes operational, and linkUp says so
// when its bound ends, naming the state it saw.
func TestLinkUpInANamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip")
	}
	ns := netns(t, "link")
	cmdOut(t, "ip", "-n", ns, "link", "add", "lka0", "type", "veth", "peer", "name", "lkb0")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	run := func() (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, self, "-test.run=^$")
		cmd.Env = append(os.Environ(), linkHelperEnv+"=lka0")
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	out, err := run()
	if err == nil || !strings.Contains(out, "link lka0: still") {
		t.Fatalf("with the peer down: %q, %v; want an error naming the link's state", out, err)
	}
	if got := cmdOut(t, "ip", "-n", ns, "-o", "link", "show", "lka0"); !strings.Contains(got, "UP") {
		t.Fatalf("linkUp did not set lka0 up:\n%s", got)
	}
	cmdOut(t, "ip", "-n", ns, "link", "set", "lkb0", "up")
	if out, err := run(); err != nil || out != "ok" {
		t.Fatalf("with the peer up: %q, %v", out, err)
	}
	if got := cmdOut(t, "ip", "-n", ns, "-o", "link", "show", "lka0"); !strings.Contains(got, "state UP") {
		t.Fatalf("lka0 is not operational:\n%s", got)
	}
}

// TestPCINICsPending reads a sysfs-shaped tree (a PCI device directory per controller, as
// /sys/bus/pci/devices holds): network controllers (class 0x02xxxx) count, each without an
// interface, directly in net/ or under a virtio device, is pending; other classes are not
// looked at.
func TestPCINICsPending(t *testing.T) {
	root := t.TempDir()
	dev := func(addr, class string, netdirs ...string) {
		d := filepath.Join(root, addr)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "class"), []byte(class+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, n := range netdirs {
			if err := os.MkdirAll(filepath.Join(d, n), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n, p := pciNICsPending(filepath.Join(root, "missing")); n != 0 || p != 0 {
		t.Fatalf("no sysfs: %d NICs, %d pending", n, p)
	}
	dev("0000:00:01.0", "0x060100")                     // an ISA bridge
	dev("0000:00:03.0", "0x020000", "virtio0/net/eth0") // virtio-net, probed
	dev("0000:00:04.0", "0x020000", "net/ens4")         // e1000, probed
	dev("0000:00:05.0", "0x010000")                     // a SCSI controller
	if n, p := pciNICsPending(root); n != 2 || p != 0 {
		t.Fatalf("all probed: %d NICs, %d pending; want 2, 0", n, p)
	}
	dev("0000:00:06.0", "0x020000")            // no driver for it (yet)
	dev("0000:00:07.0", "0x028000", "net")     // a driver that has not registered its netdev
	dev("0000:00:08.0", "0x020000", "virtio2") // virtio bound, net not there yet
	if n, p := pciNICsPending(root); n != 5 || p != 3 {
		t.Fatalf("three pending: %d NICs, %d pending; want 5, 3", n, p)
	}
}
