package initsys

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jsimonetti/rtnetlink/rtnl"
)

// linkPoll is how often linkUp reads a link's operational state while it waits.
const linkPoll = 20 * time.Millisecond

// linkUp sets the interface up and waits, within wait, until the kernel reports it
// operational (operstate "up", or "unknown" for links without carrier reporting, such as the
// loopback). It returns as soon as that is so: DHCPv4 sends from a packet socket, which needs
// no address on the link, so nothing more is waited for. (The dhcp library's netboot.IfUp
// sleeps a further second after the link is up, for the IPv6 link-local address to leave
// DAD; the IPv6 bring-up still uses it.)
func linkUp(ctx context.Context, name string, wait time.Duration) error {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	rt, err := rtnl.Dial(nil)
	if err != nil {
		return fmt.Errorf("link %s: netlink: %w", name, err)
	}
	err = rt.LinkUp(ifc)
	rt.Close()
	if err != nil {
		return fmt.Errorf("link %s: set up: %w", name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(linkPoll)
	defer tick.Stop()
	for {
		state := operState(name)
		if state == "up" || state == "unknown" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("link %s: still %s after %s: %w", name, state, wait, ctx.Err())
		case <-tick.C:
		}
	}
}

// operState is the interface's operational state as sysfs gives it ("up", "down",
// "lowerlayerdown", "unknown", ...), or "" when it cannot be read.
func operState(name string) string {
	b, err := os.ReadFile(filepath.Join("/sys/class/net", name, "operstate"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// pciNICsPending counts the PCI network controllers under sysfs (the class directory
// /sys/bus/pci/devices in production) and those of them without a network interface yet:
// no driver bound, or a driver still registering its netdev. The interface of a virtio NIC
// sits one level down (virtioN/net), of others directly in the device's net directory.
func pciNICsPending(devices string) (nics, pending int) {
	entries, err := os.ReadDir(devices)
	if err != nil {
		return 0, 0
	}
	for _, e := range entries {
		dev := filepath.Join(devices, e.Name())
		class, err := os.ReadFile(filepath.Join(dev, "class"))
		if err != nil || !strings.HasPrefix(strings.TrimSpace(string(class)), "0x02") {
			continue
		}
		nics++
		if hasNetdev(dev) {
			continue
		}
		pending++
	}
	return nics, pending
}

func hasNetdev(dev string) bool {
	for _, pattern := range []string{"net/*", "*/net/*"} {
		if m, _ := filepath.Glob(filepath.Join(dev, pattern)); len(m) > 0 {
			return true
		}
	}
	return false
}
