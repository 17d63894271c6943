package lab

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// PrintStatus writes what runs in the lab in dir and the state of its nodes.
func PrintStatus(ctx context.Context, dir string, w io.Writer) error {
	st, err := Load(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "lab %s: network namespace %s, bridge %s %s.1/24\n", st.Dir, st.Netns, st.Bridge, st.Subnet)
	if st.MediaBridge != "" {
		fmt.Fprintf(w, "virtual media segment: bridge %s %s.1/24, no DHCP server\n", st.MediaBridge, st.MediaSubnet)
	}
	for k, r := range st.Racks {
		first, last := RackRange(r.Subnet)
		fmt.Fprintf(w, "rack %d: bridge %s %s.1/24 in namespace %s, DHCP relayed (range %s-%s)\n", k+2, r.Bridge, r.Subnet, st.RouterNetns, first, last)
	}
	for _, p := range st.Procs {
		state := "stopped"
		if p.PID > 0 && alive(p.PID) {
			state = "running"
		}
		fmt.Fprintf(w, "  %-8s pid %-7d %-8s log %s\n", p.Name, p.PID, state, p.Log)
	}
	inNS := ""
	if st.Layout == LayoutProduction {
		inNS = "ip netns exec " + st.Netns + " "
		fmt.Fprintf(w, "layout: production (serve, BMCs and the image server inside %s)\n", st.Netns)
		fmt.Fprintf(w, "API: %s inside network namespace %s\n", st.APIURL, st.Netns)
	} else {
		fmt.Fprintf(w, "API: %s\n", st.APIURL)
	}
	c := st.Client()
	for _, n := range st.Nodes {
		var node map[string]any
		if n.UUID == "" {
			what := "not enrolled"
			if n.Discover {
				what = "not enrolled: booted from the network for discovery"
			}
			fmt.Fprintf(w, "  %-10s %s (MACs %s, serial %s)\n", n.Name, what, strings.Join(n.MACs, ","), n.Serial)
			continue
		}
		if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+n.UUID, nil, &node); err != nil {
			fmt.Fprintf(w, "  %-10s %s: %v\n", n.Name, n.UUID, err)
			continue
		}
		fmt.Fprintf(w, "  %-10s %s  %-5s %-8s %-16v %-10v serial %s\n", n.Name, n.UUID, n.Firmware, n.Power,
			node["provision_state"], node["power_state"], n.Serial)
		if n.CPUs > 0 {
			fmt.Fprintf(w, "             %d vCPUs, %d MiB, %d disks, NICs %s\n", n.CPUs, n.MemoryMB, len(n.Disks), strings.Join(n.MACs, ","))
		}
		if n.Boot == BootVirtualMedia {
			fmt.Fprintf(w, "             boots from virtual media, static address %s\n", n.Address)
		}
		if n.Rack > 1 {
			fmt.Fprintf(w, "             on rack %d (bridge %s), behind the DHCP relay\n", n.Rack, RackBridge(n.Rack))
		}
		if le, _ := node["last_error"].(string); le != "" {
			fmt.Fprintf(w, "             last_error: %s\n", le)
		}
	}
	fmt.Fprintf(w, "\nThe baremetal CLI (python3-ironicclient):\n  export OS_AUTH_TYPE=none OS_ENDPOINT=%s\n  %sbaremetal node list\n", st.APIURL, inNS)
	fmt.Fprintf(w, "or: %sironwork --url %s node list\n", inNS, st.APIURL)
	return nil
}
