package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/ironwork/ironwork/internal/lab"
)

const labUsage = `Usage: ironwork lab up|status|down|demo [flags]

A bare-metal lab on this machine (root): a provisioning network in a network namespace,
ironwork serve with DHCP/TFTP/HTTP boot on it, virtual BMCs and QEMU machines enrolled as
nodes. 'demo' brings it up and deploys both nodes. Needs scripts/deps.sh and scripts/kernel.sh.
'up' takes the machines' shape (--cpus, --memory, --disks, --nics) and --discover, which
starts them unenrolled, booting from the network, for the server's discovery.
With --rescue (lab layout) the nodes can also be rescued: the rescue ramdisk is built and the
nodes are enrolled with rescue_interface agent (docs/rescue.md); log in on DIR/NODE.serial.sock.
With --inspect (up and demo, lab layout) the nodes are enrolled with inspect_interface agent and
no properties; the demo inspects them (manage -> inspect) before providing and deploying.
With --boot vmedia (lab layout, --bmc vbmc) every machine is Redfish (odd SeaBIOS, even OVMF),
enrolled with boot_interface redfish-virtual-media and a static address in network_data, on a
second bridge no DHCP server serves: the BMC attaches the server's boot ISO as a virtual CD.
With --fast-track (up and demo) the server runs with fast_track = true: the agent that cleaned
a node stays up, and the deploy uses it without a reboot (docs/conductor.md, "Fast track").
With --racks N (up, lab layout) the machines go round-robin on N racks: rack 1 is the
provisioning network, racks 2 and up each a bridge and /24 in a router namespace (forwarding,
ISC dhcrelay toward the server), served by the server's [[dhcp_subnet]] tables (docs/lab.md).
`

func defaultLabDir() string {
	if os.Geteuid() == 0 {
		return "/var/tmp/ironwork-lab"
	}
	return filepath.Join(os.TempDir(), "ironwork-lab")
}

// runLab is 'ironwork lab'.
func runLab(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, labUsage)
		return 2
	}
	verb := args[0]
	if verb == "chassis-control" && len(args) > 2 { // hidden: ipmi_sim's chassis_control hook
		if err := lab.ChassisControl(args[1], args[2], args[3:], stdout); err != nil {
			fmt.Fprintln(stdout, err) // ipmi_sim reads the hook's output
			return 1
		}
		return 0
	}
	if verb == "qemu" && len(args) > 2 { // hidden: a UEFI machine's QEMU, started by its BMC
		if err := lab.ExecQEMU(args[1], args[2:]); err != nil {
			fmt.Fprintln(stderr, "ironwork lab qemu:", err)
		}
		return 1
	}
	fs := flag.NewFlagSet("ironwork lab "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, labUsage); fs.PrintDefaults() }
	dir := fs.String("dir", defaultLabDir(), "lab directory (state, logs, disks, server data)")
	nodes := fs.Int("nodes", 2, "number of machines (odd: SeaBIOS over IPMI, even: OVMF over Redfish)")
	bmc := fs.String("bmc", "vbmc", "vbmc (ironwork vbmc: IPMI and Redfish) or ipmi_sim (OpenIPMI, IPMI only)")
	kernelDir := fs.String("kernel-dir", "", "kernel for the deploy ramdisk (default: what scripts/kernel.sh unpacked)")
	layout := fs.String("layout", lab.LayoutLab, "lab (serve outside the namespace, provisioning_netns) or production "+
		"(serve, BMCs and an HTTP image server inside it, Ironic-standard enrolment; use with --bmc ipmi_sim)")
	var mf machineFlags
	fs.IntVar(&mf.shape.CPUs, "cpus", 1, "up: vCPUs per machine")
	fs.IntVar(&mf.shape.MemoryMB, "memory", 768, "up: MiB of memory per machine")
	disks := fs.String("disks", "8G", "up: disk sizes per machine, comma-separated (the first one is booted)")
	fs.IntVar(&mf.shape.NICs, "nics", 1, "up: NICs per machine on the provisioning network (the first one boots)")
	fs.BoolVar(&mf.discover, "discover", false, "up: do not enrol the machines; power them on to boot from the network (discovery)")
	fs.BoolVar(&mf.inspect, "inspect", false, "enrol the nodes with inspect_interface agent and no properties; demo: inspect before provide (lab layout)")
	fs.IntVar(&mf.racks, "racks", 1, "up: racks; machines go round-robin on them, racks 2 and up each on its own bridge and subnet behind a router namespace running dhcrelay (lab layout, network boot)")
	fs.StringVar(&mf.boot, "boot", lab.BootNetwork, "how the deploy ramdisk boots: pxe (DHCP, iPXE/PXE) or vmedia (Redfish virtual media, no DHCP; --bmc vbmc, lab layout)")
	fs.BoolVar(&mf.fastTrack, "fast-track", false, "up and demo: run the server with fast_track = true (deploys use the agent cleaning left running)")
	fs.BoolVar(&mf.rescue, "rescue", false, "also build the rescue ramdisk and enrol the nodes with the agent rescue interface (lab layout)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var err error
	if mf.shape.Disks, err = lab.ParseSizes(*disks); err != nil || mf.shape.CPUs < 1 || mf.shape.MemoryMB < 64 || mf.shape.NICs < 1 || mf.shape.NICs > 8 {
		fmt.Fprintf(stderr, "ironwork lab %s: bad machine shape (--cpus ≥ 1, --memory ≥ 64, --nics 1..8, --disks sizes): %v\n", verb, err)
		return 2
	}
	switch verb {
	case "up":
		if _, err := labUp(ctx, *dir, *nodes, *bmc, *kernelDir, *layout, mf, stdout, stderr); err != nil {
			fmt.Fprintln(stderr, "ironwork lab up:", err)
			fmt.Fprintf(stderr, "what was made is recorded: 'ironwork lab down --dir %s' removes it\n", *dir)
			return 1
		}
		return labStatus(ctx, *dir, stdout, stderr)
	case "status":
		return labStatus(ctx, *dir, stdout, stderr)
	case "down":
		if err := lab.Down(*dir, stdout); err != nil {
			fmt.Fprintln(stderr, "ironwork lab down:", err)
			return 1
		}
		fmt.Fprintln(stdout, "lab is down")
		return 0
	case "demo":
		return labDemo(ctx, *dir, *nodes, *bmc, *kernelDir, *layout, machineFlags{rescue: mf.rescue, inspect: mf.inspect, boot: mf.boot, fastTrack: mf.fastTrack}, stdout, stderr)
	}
	fmt.Fprint(stderr, labUsage)
	return 2
}

// machineFlags are 'lab up's machine shape, discovery, rescue and inspection flags.
type machineFlags struct {
	shape    lab.Shape
	discover bool
	rescue   bool
	inspect  bool
	boot     string // lab.BootNetwork or lab.BootVirtualMedia
	racks    int    // lab.Options.Racks
	// fastTrack runs the server with fast_track = true.
	fastTrack bool
}

func labUp(ctx context.Context, dir string, nodes int, bmc, kernelDir, layout string, mf machineFlags, stdout, stderr io.Writer) (*lab.State, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	opts := lab.Options{Dir: dir, Nodes: lab.DefaultNodes(nodes, bmc), Ironwork: self, KernelDir: kernelDir, Log: stdout, Layout: layout,
		Rescue: mf.rescue, Inspect: mf.inspect, Racks: mf.racks}
	if mf.fastTrack {
		opts.ServerConfig = "fast_track = true"
	}
	for i := range opts.Nodes {
		opts.Nodes[i].Shape, opts.Nodes[i].Discover = mf.shape, mf.discover
		if mf.boot == lab.BootVirtualMedia {
			opts.Nodes[i].Power, opts.Nodes[i].Boot = "redfish", lab.BootVirtualMedia // only Redfish attaches virtual media
		}
		if mf.boot != lab.BootNetwork && mf.boot != lab.BootVirtualMedia {
			return nil, fmt.Errorf("--boot %q is neither %s nor %s", mf.boot, lab.BootNetwork, lab.BootVirtualMedia)
		}
	}
	if opts.KernelDir == "" {
		opts.KernelDir = lab.FindKernel()
	}
	if err := lab.Check(opts.KernelDir); err != nil {
		return nil, err
	}
	_, noRamdisk := os.Stat(filepath.Join(dir, "ramdisk", "ironwork-deploy.initramfs"))
	if _, err := os.Stat(filepath.Join(dir, "ramdisk", "ironwork-rescue.initramfs")); mf.rescue && err != nil {
		noRamdisk = err
	}
	_, noLab := lab.Load(dir) // a lab there is taken down first, ramdisk and all
	if noRamdisk != nil || noLab == nil {
		agent, cleanup, err := buildAgent(ctx, runtime.GOARCH, stderr)
		if err != nil {
			return nil, err
		}
		defer cleanup()
		opts.Agent = agent
	}
	return lab.Up(ctx, opts)
}

func labStatus(ctx context.Context, dir string, stdout, stderr io.Writer) int {
	if err := lab.PrintStatus(ctx, dir, stdout); err != nil {
		fmt.Fprintln(stderr, "ironwork lab status:", err)
		return 1
	}
	return 0
}

// labDemo brings the lab up (unless it is) and cycles every node with live progress.
func labDemo(ctx context.Context, dir string, nodes int, bmc, kernelDir, layout string, mf machineFlags, stdout, stderr io.Writer) int {
	st, err := lab.Load(dir)
	if err != nil || !st.Ready() {
		if st, err = labUp(ctx, dir, nodes, bmc, kernelDir, layout, mf, stdout, stderr); err != nil {
			fmt.Fprintln(stderr, "ironwork lab demo:", err)
			return 1
		}
	}
	var names []string
	for _, n := range st.Nodes {
		names = append(names, n.Name)
	}
	steps := "manage -> provide (cleaning) -> deploy -> active -> undeploy (cleaning)"
	if mf.inspect {
		steps = "manage -> inspect -> provide (cleaning) -> deploy -> active -> undeploy (cleaning)"
	}
	fmt.Fprintf(stdout, "\ndeploying %s at once: %s\n", strings.Join(names, ", "), steps)
	start := time.Now()
	var mu sync.Mutex
	res := lab.Cycle(ctx, st, names, lab.CycleOptions{Inspect: mf.inspect, OnProgress: func(p lab.Progress) {
		mu.Lock()
		defer mu.Unlock()
		line := fmt.Sprintf("%6.1fs  %-8s %-16s", time.Since(start).Seconds(), p.Node, p.State)
		if p.Step != "" {
			line += " step " + p.Step
		}
		if p.BytesDone > 0 {
			line += fmt.Sprintf("  %.1f MiB", float64(p.BytesDone)/(1<<20))
			if p.BytesTotal > 0 {
				line += fmt.Sprintf(" of %.1f MiB", float64(p.BytesTotal)/(1<<20))
			}
		}
		if p.Note != "" {
			line += "  " + p.Note
		}
		fmt.Fprintln(stdout, line)
	}})
	fmt.Fprintf(stdout, "\nsummary (%.1f s in all):\n", time.Since(start).Seconds())
	code := 0
	for _, r := range res {
		fmt.Fprintf(stdout, "  %s\n", r.Node)
		for _, p := range r.Phases {
			fmt.Fprintf(stdout, "    %-30s %6.1f s\n", p.Name, p.Duration.Seconds())
		}
		if r.Properties != nil {
			fmt.Fprintf(stdout, "    inspected: %s\n", lab.FormatProperties(r.Properties))
		}
		if r.BootedLine != "" {
			fmt.Fprintf(stdout, "    booted: %s\n", r.BootedLine)
		}
		if r.Err != nil {
			fmt.Fprintf(stdout, "    FAILED: %v\n", r.Err)
			code = 1
		}
	}
	fmt.Fprintf(stdout, "\nThe lab stays up: 'ironwork lab status --dir %s', 'ironwork lab down --dir %s'.\n", dir, dir)
	return code
}
