package lab

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/lab/testimage"
	"github.com/ironwork/ironwork/internal/netns"
	"github.com/ironwork/ironwork/internal/ramdisk"
)

// Files the lab uses from Debian packages.
const (
	OVMFCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	OVMFVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
	IPXEDir  = "/usr/lib/ipxe"
	// arm64 machines: QEMU's aarch64 system emulator (qemu-system-arm) and AAVMF, the arm64
	// UEFI firmware (qemu-efi-aarch64).
	QEMUARM64 = "qemu-system-aarch64"
	AAVMFCode = "/usr/share/AAVMF/AAVMF_CODE.fd"
	AAVMFVars = "/usr/share/AAVMF/AAVMF_VARS.fd"
	// GrubARM64Dir is what scripts/grub-arm64.sh prints: the arm64 GRUB loader the server
	// serves to ARM64 UEFI clients, and GRUB's arm64 modules for the arm64 test image.
	GrubARM64Dir = "/var/cache/ironwork/grub-arm64"
)

// ArchARM64 is NodeSpec.Arch and Node.Arch of an arm64 machine.
const ArchARM64 = "arm64"

// BMC credentials of every lab node.
const (
	BMCUser     = "admin"
	BMCPassword = "password"
)

// NodeSpec describes one lab machine.
type NodeSpec struct {
	Name     string
	Firmware string // bios (SeaBIOS + iPXE) or uefi (OVMF, q35)
	Power    string // ipmi or redfish: the node's driver
	BMC      string // vbmc (default) or ipmi_sim (IPMI only)
	// BMCPassword is the password enrolled in the node's driver_info (default BMCPassword);
	// another one makes the node fail validation, as a mistyped password does.
	BMCPassword string
	// Command replaces the QEMU command line (a machine that boots nothing useful); the BMC
	// appends "-boot ..." to it.
	Command []string
	// RNG is the machine's hardware random number generator: "virtio" (virtio-rng-pci, the
	// default) or "none".
	RNG string
	// CPU is QEMU's -cpu model ("" leaves QEMU's default, qemu64, which has no RDRAND;
	// "max" has RDRAND under TCG; "qemu64,-rdrand" says the absence explicitly).
	CPU string
	// Arch is ArchARM64 for an arm64 machine: qemu-system-aarch64 -M virt (TCG) with AAVMF
	// (Firmware must be uefi), network-booting the server's arm64 GRUB loader into the arm64
	// deploy ramdisk, which the server picks by the node's cpu_arch (deploy_kernel_by_arch);
	// it deploys the arm64 test image. "" is x86_64.
	Arch string
	Shape
	// Discover leaves the machine out of the server: it is not enrolled, and Up powers it
	// on to boot from the network, as a machine nobody enrolled does (discovery).
	Discover bool
	// Boot is how the deploy ramdisk boots: BootNetwork (default) or BootVirtualMedia (a
	// redfish machine on the media segment, MediaBridge, which no DHCP server serves).
	Boot string
	// Console has the vbmc serve Serial-over-LAN from an IPMI machine's serial socket and enrols
	// its node with console_interface=ipmitool-socat (docs/console.md). Every machine's serial
	// line is on a socket (serialChardev); only these have the vbmc attached to it.
	Console bool
	// Rack is the machine's rack (Options.Racks): 0 or 1 is the provisioning network; k >= 2
	// is rack k's bridge behind the lab's DHCP relay (racks.go).
	Rack int
	// Inspect enrols this machine's node for in-band inspection, as Options.Inspect does for
	// every node (lab layout only).
	Inspect bool
}

// Shape is a machine's hardware; zero fields take the defaults.
type Shape struct {
	CPUs     int     // vCPUs (default 1)
	MemoryMB int     // MiB (default Options.Memory)
	Disks    []int64 // disk sizes in bytes, sparse files, the first one booted (default one of 8 GiB)
	NICs     int     // NICs on the provisioning network, the first one booted (default 1)
}

// DefaultDiskSize is a lab disk's size: the agent, as IPA, wants 4 GiB or more for a root disk.
const DefaultDiskSize = 8 << 30

// ParseSizes reads a comma-separated list of sizes: bytes, or with a suffix K, M, G or T
// (binary units), e.g. "8G,4G".
func ParseSizes(s string) ([]int64, error) {
	var out []int64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		mult := int64(1)
		if n := len(f); n > 0 {
			if i := strings.IndexByte("KMGT", f[n-1]&^0x20); i >= 0 {
				mult, f = int64(1)<<(10*(i+1)), f[:n-1]
			}
		}
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil || v <= 0 || v > (1<<50)/mult {
			return nil, fmt.Errorf("disk size %q: want a positive size such as 8G", f)
		}
		out = append(out, v*mult)
	}
	return out, nil
}

// Options of Up.
type Options struct {
	Dir      string     // lab directory: state, logs, disks, the server's data
	Nodes    []NodeSpec // default: DefaultNodes(2, "vbmc")
	Netns    string     // namespace name, also the prefix of what Down looks for (default "iwlab")
	Subnet   string     // first three octets of the provisioning /24 (default "10.213.0")
	Ironwork string     // the ironwork binary to run serve and vbmc with
	// Agent is the ironwork-agent binary; it is needed only when Dir holds no ramdisk yet.
	Agent     string
	KernelDir string // what scripts/kernel.sh prints (default: the newest under /var/cache/ironwork/kernel)
	// KernelDirARM64 and AgentARM64 are the arm64 kernel (scripts/kernel.sh arm64; default
	// FindKernelARM64) and ironwork-agent (GOARCH=arm64) of the arm64 deploy ramdisk, needed
	// when a node is arm64 (the agent only while Dir holds no arm64 ramdisk yet).
	KernelDirARM64 string
	AgentARM64     string
	// CallbackTimeout fails nodes whose agent does not call back (default 5m).
	CallbackTimeout time.Duration
	ImageSize       int64     // size of the test OS image (default testimage's)
	Memory          int       // MiB per VM (default 768)
	Log             io.Writer // progress lines, may be nil
	// Rescue builds the rescue ramdisk as well (ramdisk.BuildConfig.Rescue: Debian's
	// busybox-static is needed) and enrols the nodes with rescue_interface "agent" and
	// driver_info rescue_kernel and rescue_ramdisk. Lab layout only.
	Rescue bool
	// Layout is LayoutLab (the default: serve outside the namespace with provisioning_netns)
	// or LayoutProduction (serve, BMCs and an image server inside the namespace; see
	// production.go).
	Layout string
	// Inspect enrols the nodes for in-band inspection: inspect_interface "agent" and no
	// properties (cpu_arch, capabilities' boot_mode) written by the lab; inspection fills them
	// (docs/inspection.md). The PXE port is still enrolled. Lab layout only.
	Inspect bool
	// ServerConfig is added to the server's configuration as top-level TOML lines
	// (oci_plain_http_registries for a test registry, say). Lab layout only.
	ServerConfig string
	// PartitionImage builds the partition test image too (testimage.BuildPartition) and
	// serves it beside the whole-disk one (State.Partition). Lab layout only.
	PartitionImage bool
	// Cache, when set, is a build cache shared by labs (the tests): the deploy ramdisk and
	// the whole-disk test image are built there once, under a lock, and copied into each lab
	// (cache.go). The first lab's Agent and KernelDir build them. Empty: every lab builds its own.
	Cache string
	// Racks is the number of racks (default 1): racks 2 and up are their own bridges and
	// subnets behind a router namespace running dhcrelay toward the server (racks.go). When no
	// machine names its rack (NodeSpec.Rack), they are spread round-robin. Lab layout only.
	Racks int
}

// DefaultNodes returns n nodes alternating SeaBIOS over IPMI and OVMF over Redfish; with
// bmc "ipmi_sim" every node is IPMI through OpenIPMI's simulator.
func DefaultNodes(n int, bmc string) []NodeSpec {
	var out []NodeSpec
	for i := 1; i <= n; i++ {
		s := NodeSpec{Name: fmt.Sprintf("node-%d", i), Firmware: "bios", Power: "ipmi", BMC: "vbmc"}
		if i%2 == 0 {
			s.Firmware, s.Power = "uefi", "redfish"
		}
		if bmc == "ipmi_sim" {
			s.Power, s.BMC = "ipmi", "ipmi_sim"
		}
		out = append(out, s)
	}
	return out
}

// Check reports what the lab needs and this machine lacks, with the command that installs it.
func Check(kernelDir string) error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (network namespaces and taps): run as root")
	}
	for _, tool := range []string{"ip", "qemu-system-x86_64"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool+": run scripts/deps.sh (Debian packages iproute2 qemu-system-x86)")
		}
	}
	for _, f := range []string{IPXEDir + "/undionly.kpxe", IPXEDir + "/snponly.efi", IPXEDir + "/qemu/efi-virtio.rom", OVMFCode, OVMFVars} {
		if _, err := os.Stat(f); err != nil {
			missing = append(missing, f+": run scripts/deps.sh (Debian packages ipxe ipxe-qemu ovmf)")
		}
	}
	if kernelDir == "" {
		missing = append(missing, "a Linux kernel for the deploy ramdisk: run scripts/kernel.sh")
	} else if _, err := os.Stat(filepath.Join(kernelDir, "vmlinuz")); err != nil {
		missing = append(missing, kernelDir+"/vmlinuz: run scripts/kernel.sh")
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("the lab cannot start on this machine:\n  %s", strings.Join(missing, "\n  "))
}

// FindKernelARM64 returns the newest arm64 kernel directory scripts/kernel.sh arm64 unpacked,
// or "".
func FindKernelARM64() string {
	ks, _ := filepath.Glob("/var/cache/ironwork/kernel-arm64/*/vmlinuz")
	if len(ks) == 0 {
		return ""
	}
	return filepath.Dir(ks[len(ks)-1])
}

// CheckARM64 reports what arm64 lab machines need and this machine lacks.
func CheckARM64(kernelDir string) error {
	var missing []string
	if _, err := exec.LookPath(QEMUARM64); err != nil {
		missing = append(missing, QEMUARM64+": run scripts/deps.sh (Debian package qemu-system-arm)")
	}
	for _, f := range []string{AAVMFCode, AAVMFVars} {
		if !exists(f) {
			missing = append(missing, f+": run scripts/deps.sh (Debian package qemu-efi-aarch64)")
		}
	}
	for _, f := range []string{GrubARM64Dir + "/grubnetaa64.efi", GrubARM64Dir + "/arm64-efi/linux.mod"} {
		if !exists(f) {
			missing = append(missing, f+": run scripts/grub-arm64.sh")
		}
	}
	if kernelDir == "" || !exists(filepath.Join(kernelDir, "vmlinuz")) {
		missing = append(missing, "an arm64 kernel: run scripts/kernel.sh arm64")
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("arm64 lab machines cannot start on this machine:\n  %s", strings.Join(missing, "\n  "))
}

// FindKernel returns the newest kernel directory scripts/kernel.sh unpacked, or "".
func FindKernel() string {
	if k := os.Getenv("IRONWORK_TEST_KERNEL"); k != "" {
		return filepath.Dir(k)
	}
	ks, _ := filepath.Glob("/var/cache/ironwork/kernel/*/vmlinuz")
	if len(ks) == 0 {
		return ""
	}
	return filepath.Dir(ks[len(ks)-1])
}

func (o *Options) defaults() {
	if o.Layout == "" {
		o.Layout = LayoutLab
	}
	if o.Netns == "" {
		o.Netns = "iwlab"
	}
	if o.Subnet == "" {
		o.Subnet = "10.213.0"
	}
	if o.Nodes == nil {
		o.Nodes = DefaultNodes(2, "vbmc")
	}
	if o.KernelDir == "" {
		o.KernelDir = FindKernel()
	}
	if o.KernelDirARM64 == "" && o.hasARM64() {
		o.KernelDirARM64 = FindKernelARM64()
	}
	if o.CallbackTimeout == 0 {
		o.CallbackTimeout = 5 * time.Minute
	}
	if o.Memory == 0 {
		o.Memory = 768
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	o.spreadRacks()
	for i := range o.Nodes {
		if o.Nodes[i].BMC == "" {
			o.Nodes[i].BMC = "vbmc"
		}
		if o.Nodes[i].BMCPassword == "" {
			o.Nodes[i].BMCPassword = BMCPassword
		}
		if o.Nodes[i].RNG == "" {
			o.Nodes[i].RNG = "virtio"
		}
		sh := &o.Nodes[i].Shape
		if sh.CPUs <= 0 {
			sh.CPUs = 1
		}
		if sh.MemoryMB <= 0 {
			sh.MemoryMB = o.Memory
		}
		if len(sh.Disks) == 0 {
			sh.Disks = []int64{DefaultDiskSize}
		}
		if sh.NICs <= 0 {
			sh.NICs = 1
		}
	}
}

// Up starts a lab in opts.Dir and returns its state. A lab already recorded there is taken
// down first. On an error what was made stays recorded: Down removes it.
func Up(ctx context.Context, opts Options) (*State, error) {
	callbackTimeout := opts.CallbackTimeout // the production layout keeps the server's default unless one is given
	opts.defaults()
	if err := errors.Join(opts.check(), opts.checkDiscover(), opts.checkVirtualMedia(), opts.checkARM64(), opts.checkRacks()); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create lab directory: %w", err)
	}
	if _, err := Load(dir); err == nil {
		if err := Down(dir, opts.Log); err != nil {
			return nil, fmt.Errorf("take down the lab recorded in %s: %w", dir, err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	st := &State{Dir: dir, Netns: opts.Netns, Bridge: "br0", Subnet: opts.Subnet, Layout: opts.Layout}
	prod := opts.Layout == LayoutProduction
	logf := func(format string, args ...any) { fmt.Fprintf(opts.Log, format+"\n", args...) }

	// The provisioning network: one namespace, a bridge, a tap per machine.
	if err := st.update(func(*State) {}); err != nil {
		return st, err
	}
	logf("network namespace %s: bridge %s %s.1/24, %d taps", st.Netns, st.Bridge, st.Subnet, len(opts.Nodes))
	_ = exec.Command("ip", "netns", "del", st.Netns).Run() // left by a lab whose state is gone
	if err := ipCmd("netns", "add", st.Netns); err != nil {
		return st, err
	}
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", st.Bridge, "type", "bridge"},
		{"link", "set", st.Bridge, "type", "bridge", "forward_delay", "0"},
		{"addr", "add", st.Subnet + ".1/24", "dev", st.Bridge},
		{"addr", "add", "fd" + strings.ReplaceAll(st.Subnet, ".", ":") + "::1/64", "dev", st.Bridge, "nodad"},
		{"link", "set", st.Bridge, "up"},
	} {
		if err := ipCmd(append([]string{"-n", st.Netns}, args...)...); err != nil {
			return st, err
		}
	}
	mediaNet := ""
	if opts.usesVirtualMedia() {
		// The media segment: a second bridge with no DHCP server on it.
		mediaNet, _ = mediaSubnet(st.Subnet) // checked by checkVirtualMedia
		if err := st.update(func(s *State) { s.MediaBridge, s.MediaSubnet = MediaBridge, mediaNet }); err != nil {
			return st, err
		}
		for _, args := range [][]string{
			{"link", "add", MediaBridge, "type", "bridge"},
			{"link", "set", MediaBridge, "type", "bridge", "forward_delay", "0"},
			{"addr", "add", mediaNet + ".1/24", "dev", MediaBridge},
			{"link", "set", MediaBridge, "up"},
		} {
			if err := ipCmd(append([]string{"-n", st.Netns}, args...)...); err != nil {
				return st, err
			}
		}
		logf("virtual media segment: bridge %s %s.1/24, no DHCP server", MediaBridge, mediaNet)
	}
	rackSubnets := ""
	if opts.Racks > 1 {
		if rackSubnets, err = upRacks(st, opts.Racks, logf); err != nil {
			return st, err
		}
	}
	if prod {
		// The image server's own address: another host on the provisioning network.
		if err := ipCmd("-n", st.Netns, "addr", "add", imageServerAddr(st)+"/24", "dev", st.Bridge); err != nil {
			return st, err
		}
	}

	// The deploy ramdisk and the image to deploy.
	rd := filepath.Join(dir, "ramdisk")
	kernel, initrd := filepath.Join(rd, "ironwork-deploy.kernel"), filepath.Join(rd, "ironwork-deploy.initramfs")
	if opts.Cache != "" && (!exists(kernel) || !exists(initrd)) {
		if err := cachedRamdisk(ctx, opts, rd); err != nil {
			return st, err
		}
	}
	if !exists(kernel) || !exists(initrd) {
		if opts.Agent == "" {
			return st, errors.New("the lab has no deploy ramdisk yet and no ironwork-agent binary to build it with")
		}
		logf("building the deploy ramdisk from %s", opts.KernelDir)
		if _, err := ramdisk.Build(ctx, ramdisk.BuildConfig{KernelDir: opts.KernelDir, Agent: opts.Agent, Output: rd}); err != nil {
			return st, fmt.Errorf("build the deploy ramdisk: %w", err)
		}
	}
	rescueKernel, rescueInitrd := filepath.Join(rd, ramdisk.RescueKernelName), filepath.Join(rd, ramdisk.RescueInitramfsName)
	if opts.Rescue && (!exists(rescueKernel) || !exists(rescueInitrd)) {
		if prod {
			return st, errors.New("the rescue ramdisk is offered in the lab layout only")
		}
		if opts.Agent == "" {
			return st, errors.New("the lab has no rescue ramdisk yet and no ironwork-agent binary to build it with")
		}
		logf("building the rescue ramdisk from %s", opts.KernelDir)
		if _, err := ramdisk.Build(ctx, ramdisk.BuildConfig{KernelDir: opts.KernelDir, Agent: opts.Agent, Output: rd, Rescue: true,
			Dropbear: dropbearIfInstalled()}); err != nil {
			return st, fmt.Errorf("build the rescue ramdisk: %w", err)
		}
	}
	data := filepath.Join(dir, "data")
	arm64Server := ""
	if opts.hasARM64() {
		if arm64Server, err = upARM64(ctx, st, opts, rd, filepath.Join(data, "boot", "lab"), logf); err != nil {
			return st, err
		}
	}
	imgPath := filepath.Join(data, "boot", "lab", "image.raw")
	if prod {
		imgPath = filepath.Join(dir, "images", "image.raw")
	}
	if err := os.MkdirAll(filepath.Dir(imgPath), 0o755); err != nil {
		return st, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "work"), 0o755); err != nil {
		return st, err
	}
	var sum string
	if opts.Cache != "" {
		sum, err = cachedTestImage(ctx, opts, imgPath)
	} else {
		logf("building the test OS image")
		sum, err = testimage.Build(ctx, imgPath, testimage.Options{KernelDir: opts.KernelDir, WorkDir: filepath.Join(dir, "work"),
			Size: opts.ImageSize, Log: slog.New(slog.NewTextHandler(opts.Log, &slog.HandlerOptions{Level: slog.LevelWarn})),
			BootFilesDir: filepath.Dir(imgPath)})
		if err != nil {
			err = fmt.Errorf("build the test image: %w", err)
		}
	}
	if err != nil {
		return st, err
	}
	if err := st.update(func(s *State) {
		s.Image, s.ImageSH = "http://"+st.Subnet+".1:8080/lab/image.raw", sum
		// Local files the conductor links (file_url_allowed_paths has their directory).
		s.ImageKernel = filepath.Join(filepath.Dir(imgPath), testimage.BootKernelName)
		s.ImageRamdisk = filepath.Join(filepath.Dir(imgPath), testimage.BootInitramfsName)
	}); err != nil {
		return st, err
	}
	if opts.PartitionImage {
		if prod {
			return st, errors.New("the partition test image is offered in the lab layout only")
		}
		logf("building the partition test image")
		p, err := testimage.BuildPartition(ctx, filepath.Join(data, "boot", "lab", "part"), testimage.Options{KernelDir: opts.KernelDir,
			WorkDir: filepath.Join(dir, "work"), Log: slog.New(slog.NewTextHandler(opts.Log, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		if err != nil {
			return st, fmt.Errorf("build the partition test image: %w", err)
		}
		base := "http://" + st.Subnet + ".1:8080/lab/part/"
		if err := st.update(func(s *State) {
			s.Partition = &PartitionImage{Image: base + "root.img", SHA256: p.SHA256, Kernel: base + "vmlinuz", Ramdisk: base + "initrd.img"}
		}); err != nil {
			return st, err
		}
	}
	if prod {
		if err := st.update(func(s *State) { s.Image, s.ImageKernel, s.ImageRamdisk = imageURL(st, "image.raw"), "", "" }); err != nil {
			return st, err
		}
		if err := startImageServer(ctx, st, kernel, initrd); err != nil {
			return st, err
		}
	}

	// Machines: taps, disks, the BMCs' configuration.
	apiPort, err := freePort("tcp")
	if err != nil {
		return st, err
	}
	redfishPort, err := freePort("tcp")
	if err != nil {
		return st, err
	}
	var vcfg bytes.Buffer
	fmt.Fprintf(&vcfg, "username = %q\npassword = %q\nredfish_listen = \"127.0.0.1:%d\"\n", BMCUser, BMCPassword, redfishPort)
	if !prod {
		// The BMCs fetch virtual media from the server's HTTP boot service, which listens on
		// the provisioning network inside the namespace, as a real BMC's network reaches it.
		fmt.Fprintf(&vcfg, "media_netns = %q\n", st.Netns)
	}
	var simNodes []int
	simCmds := map[int][]string{}
	for i, spec := range opts.Nodes {
		n := Node{Name: spec.Name, Firmware: spec.Firmware, Power: spec.Power, BMC: spec.BMC, RNG: spec.RNG, CPU: spec.CPU, Arch: spec.Arch,
			MAC: fmt.Sprintf("52:54:00:1a:%02x:%02x", len(opts.Nodes), i+1), Tap: fmt.Sprintf("tap%d", i),
			Disk: filepath.Join(dir, spec.Name+".disk"), Serial: filepath.Join(dir, spec.Name+".serial.log"),
			CPUs: spec.CPUs, MemoryMB: spec.MemoryMB, Discover: spec.Discover,
			SerialSocket: filepath.Join(dir, spec.Name+".serial.sock"), Boot: spec.Boot, Rack: spec.Rack}
		if spec.Boot == BootVirtualMedia {
			n.Address = mediaAddress(mediaNet, i)
		}
		for k := range spec.NICs {
			mac, tap := n.MAC, n.Tap
			if k > 0 { // more NICs: the same scheme with the NIC's number in the third octet
				mac, tap = fmt.Sprintf("52:54:%02x:1a:%02x:%02x", k, len(opts.Nodes), i+1), fmt.Sprintf("tap%dn%d", i, k)
			}
			n.MACs, n.Taps = append(n.MACs, mac), append(n.Taps, tap)
		}
		for k := range spec.Disks {
			disk := n.Disk
			if k > 0 {
				disk = filepath.Join(dir, fmt.Sprintf("%s.disk%d", spec.Name, k))
			}
			n.Disks = append(n.Disks, disk)
		}
		if err := st.update(func(s *State) { s.Nodes = append(s.Nodes, n) }); err != nil {
			return st, err
		}
		bridge, tapNetns := nodeBridge(st, n), nodeNetns(st, n)
		for _, tap := range n.Taps {
			for _, args := range [][]string{{"tuntap", "add", tap, "mode", "tap"}, {"link", "set", tap, "master", bridge}, {"link", "set", tap, "up"}} {
				if err := ipCmd(append([]string{"-n", tapNetns}, args...)...); err != nil {
					return st, err
				}
			}
		}
		for k, disk := range n.Disks {
			if err := sparseFile(disk, spec.Disks[k]); err != nil {
				return st, err
			}
		}
		cmd := spec.Command
		if cmd == nil {
			if cmd, err = qemuCommand(st, n, spec, opts.Ironwork); err != nil {
				return st, err
			}
		}
		switch {
		case spec.BMC == "ipmi_sim":
			simNodes = append(simNodes, i)
			simCmds[i] = cmd
			continue
		case spec.Power == "ipmi":
			port, err := freePort("udp")
			if err != nil {
				return st, err
			}
			n.BMCAddress = fmt.Sprintf("127.0.0.1:%d", port)
			sol := ""
			if spec.Console {
				sol = fmt.Sprintf("serial_socket = %q\n", serialSocket(st, n))
			}
			fmt.Fprintf(&vcfg, "\n[[machine]]\nname = %q\nipmi_listen = %q\n%scommand = %s\n", n.Name, n.BMCAddress, sol, tomlList(cmd))
		default:
			n.BMCAddress = fmt.Sprintf("http://127.0.0.1:%d", redfishPort)
			fmt.Fprintf(&vcfg, "\n[[machine]]\nname = %q\ncommand = %s\n", n.Name, tomlList(cmd))
		}
		if err := st.update(func(s *State) { s.Nodes[i] = n }); err != nil {
			return st, err
		}
	}
	if len(simNodes) < len(opts.Nodes) {
		cfgPath := filepath.Join(dir, "vbmc.toml")
		if err := os.WriteFile(cfgPath, vcfg.Bytes(), 0o644); err != nil {
			return st, err
		}
		bin, args := st.inLayout(opts.Ironwork, "vbmc", "--config", cfgPath, "--log-level", "debug")
		if err := startProc(st, "vbmc", bin, args...); err != nil {
			return st, err
		}
	}
	for _, i := range simNodes {
		if err := startIPMISim(st, i, simCmds[i], opts); err != nil {
			return st, err
		}
	}

	// The server.
	if prod {
		if err := startProductionServer(ctx, st, opts.Ironwork, callbackTimeout); err != nil {
			return st, err
		}
		if err := enrolProduction(ctx, st, opts, kernel, initrd); err != nil {
			return st, err
		}
		logf("API: %s inside network namespace %s", st.APIURL, st.Netns)
		return st, nil
	}
	scfg := fmt.Sprintf(`listen = "127.0.0.1:%d"
data_dir = %q
hostname = "lab"
log_level = "debug"
provisioning_interface = %q
provisioning_netns = %q
dhcp_mode = "full"
dhcp_range = "%s.100,%s.199"
callback_timeout = %q
timeout_check_interval = "2s"
power_sync_interval = "30s"
agent_power_off_timeout = "30s"
default_boot_mode = "uefi"
# no_timer_check: a TCG guest on a loaded host can miss the kernel's IO-APIC timer check and
# panic ("IO-APIC + timer doesn't work"); the check means nothing for an emulated machine.
kernel_append_params = "console=tty0 console=ttyS0,115200n8 no_timer_check"
file_url_allowed_paths = [%q, %q]
console_log_dir = %q
`, apiPort, data, st.Bridge, st.Netns, st.Subnet, st.Subnet, opts.CallbackTimeout.String(), rd, filepath.Dir(imgPath), filepath.Join(dir, "consoles"))
	scfg += arm64Server
	if opts.ServerConfig != "" {
		scfg += strings.TrimSpace(opts.ServerConfig) + "\n"
	}
	scfg += rackSubnets // tables: after every top-level key
	for _, n := range opts.Nodes {
		if n.Discover { // machines nobody enrolled get the ramdisk and are enrolled from their inventory
			scfg += fmt.Sprintf("\n[discovery]\nenabled = true\ndeploy_kernel = %q\ndeploy_ramdisk = %q\n", kernel, initrd)
			break
		}
	}
	cfgPath := filepath.Join(dir, "ironwork.toml")
	if err := os.WriteFile(cfgPath, []byte(scfg), 0o644); err != nil {
		return st, err
	}
	if err := st.update(func(s *State) { s.APIURL = fmt.Sprintf("http://127.0.0.1:%d", apiPort) }); err != nil {
		return st, err
	}
	if err := startProc(st, "serve", opts.Ironwork, "serve", "--config", cfgPath); err != nil {
		return st, err
	}
	c := st.Client()
	if err := waitAPI(ctx, c, st, 30*time.Second); err != nil {
		return st, err
	}

	// Enrol the nodes; machines to be discovered are started instead.
	for i, n := range st.Nodes {
		spec := opts.Nodes[i]
		if spec.Discover {
			if err := startDiscovered(ctx, fmt.Sprintf("http://127.0.0.1:%d", redfishPort), n); err != nil {
				return st, err
			}
			logf("machine %s: not enrolled, booting from the network (MACs %s, BMC %s)", n.Name, strings.Join(n.MACs, ","), n.BMCAddress)
			continue
		}
		di := bmcDriverInfo(n, spec.BMCPassword, kernel, initrd)
		body := map[string]any{"name": n.Name, "driver": n.Power,
			"boot_interface": "ipxe", "deploy_interface": "direct", "driver_info": di, "resource_class": ResourceClass,
			"properties": map[string]any{"capabilities": "boot_mode:" + n.Firmware, "cpu_arch": "x86_64"}}
		if n.Arch == ArchARM64 {
			// No deploy kernel of its own: the server's deploy_kernel_by_arch gives the
			// arm64 one by cpu_arch. The console of QEMU's virt machine is its PL011.
			delete(di, "deploy_kernel")
			delete(di, "deploy_ramdisk")
			di["kernel_append_params"] = "console=ttyAMA0,115200"
			body["properties"] = map[string]any{"capabilities": "boot_mode:uefi", "cpu_arch": "aarch64"}
		}
		if opts.Inspect || spec.Inspect {
			delete(body, "properties")
			body["inspect_interface"] = "agent"
		}
		if opts.Rescue {
			di["rescue_kernel"], di["rescue_ramdisk"] = rescueKernel, rescueInitrd
			body["rescue_interface"] = "agent"
		}
		if n.Boot == BootVirtualMedia {
			body["boot_interface"] = VirtualMediaBootInterface
			body["network_data"] = networkData(n, mediaNet)
		}
		if spec.Console && n.Power == "ipmi" && n.BMC == "vbmc" {
			body["console_interface"] = "ipmitool-socat" // the vbmc serves SOL from the machine's serial socket
		}
		var node map[string]any
		if err := c.Do(ctx, http.MethodPost, "/v1/nodes", body, &node); err != nil {
			return st, fmt.Errorf("enrol %s: %w", n.Name, err)
		}
		uuid, _ := node["uuid"].(string)
		if err := st.update(func(s *State) { s.Nodes[i].UUID = uuid }); err != nil {
			return st, err
		}
		if err := c.Do(ctx, http.MethodPost, "/v1/ports", map[string]any{"node_uuid": uuid, "address": n.MAC, "pxe_enabled": true}, nil); err != nil {
			return st, fmt.Errorf("enrol the port of %s: %w", n.Name, err)
		}
		logf("node %s (%s): %s firmware, %s via %s at %s, MAC %s", n.Name, uuid, n.Firmware, n.Power, n.BMC, n.BMCAddress, n.MAC)
	}
	logf("API: %s", st.APIURL)
	return st, nil
}

// ResourceClass is the resource class of the lab's nodes, for allocations and ironwork deploy.
const ResourceClass = "lab"

// Client returns an API client for the lab's server; in the production layout its
// connections are made inside the lab's namespace, where the server listens.
func (s *State) Client() *api.Client {
	hc := &http.Client{Timeout: 30 * time.Second}
	if s.Layout == LayoutProduction {
		hc.Transport = &http.Transport{DialContext: netns.Dialer(s.Netns)}
	}
	return &api.Client{BaseURL: s.APIURL, Version: "1.87", HTTP: hc}
}

// qemuCommand is the machine's QEMU command line, run inside the namespace, without -boot:
// its shape's vCPUs, memory, disks (the first one booted) and NICs (the first one booted).
// The serial line is a unix socket (serialSocket) the vbmc's Serial-over-LAN and the rescue
// test attach to, logged to the serial log.
func qemuCommand(st *State, n Node, spec NodeSpec, self string) ([]string, error) {
	if len(n.Taps) == 0 || len(n.MACs) != len(n.Taps) {
		n.Taps, n.MACs = []string{n.Tap}, []string{n.MAC}
	}
	if len(n.Disks) == 0 {
		n.Disks = []string{n.Disk}
	}
	if n.SerialSocket == "" {
		n.SerialSocket = serialSocket(st, n)
	}
	spec.CPUs, spec.MemoryMB = max(spec.CPUs, 1), cmp.Or(max(spec.MemoryMB, 0), 768)
	bin := "qemu-system-x86_64"
	if spec.Arch == ArchARM64 {
		bin = QEMUARM64
	}
	args := []string{"ip", "netns", "exec", nodeNetns(st, n), bin, "-accel", "tcg", "-m", strconv.Itoa(spec.MemoryMB),
		"-smp", strconv.Itoa(spec.CPUs), "-display", "none", "-nodefaults", "-no-reboot", "-name", n.Name,
		"-chardev", serialChardev(n), "-serial", "chardev:serial0"}
	for k, tap := range n.Taps {
		args = append(args, "-netdev", fmt.Sprintf("tap,id=n%d,ifname=%s,script=no,downscript=no", k, tap))
	}
	switch {
	case spec.CPU != "":
		args = append(args, "-cpu", spec.CPU)
	case spec.Arch == ArchARM64:
		// A plain ARMv8.0 core: "max" adds pointer authentication and more, which TCG
		// emulates slowly.
		args = append(args, "-cpu", "cortex-a57")
	}
	switch spec.RNG {
	case "virtio", "":
		args = append(args, "-device", "virtio-rng-pci")
	case "none":
	default:
		return nil, fmt.Errorf("node %s: rng %q is neither virtio nor none", n.Name, spec.RNG)
	}
	boot := "file=" + n.Disks[0] + ",if=virtio,format=raw"
	if n.Firmware == "uefi" {
		// OVMF's own PXE (no iPXE ROM), which loads snponly.efi over TFTP; the disk by
		// bootindex, which 'ironwork lab qemu' sets from the BMC's boot device.
		boot = "file=" + n.Disks[0] + ",if=none,id=disk0,format=raw"
	}
	args = append(args, "-drive", boot)
	for _, d := range n.Disks[1:] {
		args = append(args, "-drive", "file="+d+",if=virtio,format=raw")
	}
	if n.Firmware == "uefi" {
		vars := filepath.Join(st.Dir, n.Name+".vars.fd")
		machine, code := "q35", OVMFCode
		if spec.Arch == ArchARM64 {
			machine, code = "virt", AAVMFCode
		}
		args = append(args, "-machine", machine, "-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+code,
			"-drive", "if=pflash,format=raw,unit=1,file="+vars)
		args = append([]string{args[0], args[1], args[2], args[3], self, "lab", "qemu", vars}, args[4:]...)
	}
	for k, mac := range n.MACs {
		nic := fmt.Sprintf("virtio-net-pci,netdev=n%d,mac=%s", k, mac)
		if n.Firmware == "uefi" || k > 0 || n.Boot == BootVirtualMedia {
			nic += ",romfile=" // only the first NIC network-boots (BIOS: its iPXE ROM); virtual media machines none
		}
		args = append(args, "-device", nic)
	}
	return args, nil
}

// dropbearIfInstalled is Debian's dropbear, for SSH into the rescue ramdisk, or "" (no SSH).
func dropbearIfInstalled() string {
	if exists(ramdisk.DefaultDropbear) {
		return ramdisk.DefaultDropbear
	}
	return ""
}

// serialChardev is the machine's serial port: a unix socket a program may connect to (to log
// in on the console, or the vbmc's Serial-over-LAN), whose output is also appended to the
// serial log.
func serialChardev(n Node) string {
	return "socket,id=serial0,path=" + n.SerialSocket + ",server=on,wait=off,logfile=" + n.Serial + ",logappend=on"
}

// serialSocket is the unix socket QEMU serves a machine's serial line on.
func serialSocket(st *State, n Node) string {
	if n.SerialSocket != "" {
		return n.SerialSocket
	}
	return filepath.Join(st.Dir, n.Name+".serial.sock")
}

// startProc starts a background process in its own session, logging to <dir>/<name>.log,
// recorded in the state before it starts and with its pid after.
func startProc(st *State, name, bin string, args ...string) error {
	logPath := filepath.Join(st.Dir, name+".log")
	if err := st.update(func(s *State) { s.Procs = append(s.Procs, Proc{Name: name, Log: logPath}) }); err != nil {
		return err
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = st.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	go cmd.Wait() // reaps it when this process outlives it (tests); otherwise init does
	return st.update(func(s *State) {
		for i := range s.Procs {
			if s.Procs[i].Name == name && s.Procs[i].PID == 0 {
				s.Procs[i].PID = cmd.Process.Pid
			}
		}
	})
}

func waitAPI(ctx context.Context, c *api.Client, st *State, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		err := c.Do(ctx, http.MethodGet, "/v1/nodes", nil, nil)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			b, _ := os.ReadFile(filepath.Join(st.Dir, "serve.log"))
			return fmt.Errorf("the server did not answer at %s within %s: %v\n%s", st.APIURL, within, err, tail(b, 20))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func tail(b []byte, lines int) string {
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

func ipCmd(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func sparseFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// freePort returns a loopback port that was free a moment ago.
func freePort(network string) (int, error) {
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer pc.Close()
		return pc.LocalAddr().(*net.UDPAddr).Port, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func tomlList(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = strconv.Quote(a)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// bmcDriverInfo is a lab node's driver_info, in Ironic's field names: its deploy kernel and
// ramdisk, and how to reach its BMC (IPMI or Redfish).
func bmcDriverInfo(n Node, password, kernel, initrd string) map[string]any {
	di := map[string]any{"deploy_kernel": kernel, "deploy_ramdisk": initrd}
	if n.Power == "ipmi" {
		host, port, _ := net.SplitHostPort(n.BMCAddress)
		di["ipmi_address"], di["ipmi_port"] = host, port
		di["ipmi_username"], di["ipmi_password"] = BMCUser, password
		if n.BMC == "ipmi_sim" {
			di["ipmi_cipher_suite"] = "3" // ipmi_sim lacks suite 17 and Get Channel Cipher Suites
		}
		return di
	}
	di["redfish_address"], di["redfish_system_id"] = n.BMCAddress, "/redfish/v1/Systems/"+n.Name
	di["redfish_username"], di["redfish_password"] = BMCUser, password
	return di
}
