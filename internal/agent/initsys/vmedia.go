package initsys

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// VirtualMediaLabel is the volume label of the boot ISO that virtual media boot inserts
// (Ironic's, and Ironwork's internal/vmedia), and NetworkDataPath where it keeps the node's
// network_data.
const (
	VirtualMediaLabel = "VMEDIA_BOOT_ISO"
	NetworkDataPath   = "openstack/latest/network_data.json"
)

// StaticConfig says what StaticNetwork configured.
type StaticConfig struct {
	Device  string // the CD it read network_data from
	Summary string
	Links   map[string]string // network_data link ID → Linux name
}

// StaticNetwork configures the network from the network_data of the virtual media the
// machine booted from: the first CD (/dev/sr*) labelled VirtualMediaLabel that holds
// NetworkDataPath. It returns nil, nil when there is none, or when network_data asks for
// DHCP or has no static address (the caller runs DHCP then); an error when network_data is
// there but cannot be applied: configuring the wrong network silently would hide the fault.
func StaticNetwork(ctx context.Context, log *slog.Logger, cfg NetworkConfig) (*StaticConfig, error) {
	dev, doc := findNetworkData(log)
	if doc == nil {
		return nil, nil
	}
	if _, err := WaitForNICs(ctx, cfg.NICWait); err != nil {
		return nil, err
	}
	nics, err := physicalNICs()
	if err != nil {
		return nil, err
	}
	byName := map[string]string{}
	for _, n := range nics {
		byName[n.Name] = n.HardwareAddr.String()
	}
	p, err := PlanNetwork(doc, byName)
	if err != nil {
		return nil, fmt.Errorf("network_data on %s: %w", dev, err)
	}
	if len(p.Addrs) == 0 || len(p.DHCP) > 0 {
		log.Info("network_data asks for DHCP or has no static address", "device", dev)
		return nil, nil
	}
	if err := linkUp(ctx, "lo", 2*time.Second); err != nil {
		log.Warn("loopback not up", logKeyNIC, "lo", logKeyError, err)
	}
	names, err := ApplyNetworkPlan(p, cfg.ResolvConf, log)
	if err != nil {
		return nil, err
	}
	var parts []string
	for _, a := range p.Addrs {
		parts = append(parts, names[a.Link]+" "+a.Addr.String())
	}
	for _, r := range p.Routes {
		parts = append(parts, r.Dst.String()+" via "+r.Gateway.String())
	}
	// Links need a moment to come up before the first packets go out.
	waitLinks(names, cfg.LinkWait)
	return &StaticConfig{Device: dev, Summary: strings.Join(parts, ", "), Links: names}, nil
}

// findNetworkData returns the device and content of the boot ISO's network_data, if any.
func findNetworkData(log *slog.Logger) (string, []byte) {
	devs, _ := filepath.Glob("/dev/sr*")
	sort.Strings(devs)
	for _, d := range devs {
		f, err := os.Open(d)
		if err != nil {
			continue
		}
		label, err := ISOLabel(f)
		if err != nil || label != VirtualMediaLabel {
			f.Close()
			continue
		}
		b, err := ReadISOFile(f, NetworkDataPath, 1<<20)
		f.Close()
		if err != nil {
			log.Info("boot ISO without network_data", "device", d, logKeyError, err)
			continue
		}
		return d, b
	}
	return "", nil
}

// waitLinks waits up to wait for every link to report running.
func waitLinks(names map[string]string, wait time.Duration) {
	deadline := time.Now().Add(wait)
	for _, n := range names {
		for !linkRunning(n) && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
		}
	}
}
