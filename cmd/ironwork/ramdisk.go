package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/ironwork/ironwork/internal/ramdisk"
)

const ramdiskUsage = `Usage: ironwork ramdisk build --kernel-dir DIR --output DIR [--arch amd64|arm64] [--agent PATH] [--modules LIST] [--rescue [--busybox PATH]]

Builds the deploy ramdisk: OUTPUT/ironwork-deploy.kernel (the kernel's vmlinuz) and
OUTPUT/ironwork-deploy.initramfs (gzip'd cpio: /init = ironwork-agent, the listed kernel
modules and their dependencies). DIR is what scripts/kernel.sh prints. Without --agent the
agent is built with 'go build' (CGO_ENABLED=0) from this source tree.

--arch arm64 builds an arm64 ramdisk: the agent cross-compiled (GOARCH=arm64), DIR an arm64
kernel (scripts/kernel.sh arm64 prints one), the arm64 module set; the host's disk tools
stay out (arm64 nodes deploy whole-disk images). Give arm64 nodes this ramdisk through
driver_info or the conductor's deploy_kernel_by_arch (docs/network-boot.md).

With --rescue it builds the rescue ramdisk instead, OUTPUT/ironwork-rescue.kernel and
OUTPUT/ironwork-rescue.initramfs: the same agent plus a static busybox (Debian's
busybox-static) as a shell environment, dropbear for SSH (Debian's dropbear-bin, when
installed) and the filesystem modules (ext4, xfs, vfat) to mount an instance's disk; after a
rescue the rescue user logs in on the serial console or over SSH. Give the node driver_info
rescue_kernel and rescue_ramdisk (docs/rescue.md).
`

// runRamdisk is 'ironwork ramdisk build'.
func runRamdisk(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "build" {
		fmt.Fprint(stderr, ramdiskUsage)
		return 2
	}
	fs := flag.NewFlagSet("ironwork ramdisk build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, ramdiskUsage); fs.PrintDefaults() }
	kernelDir := fs.String("kernel-dir", "", "kernel directory: vmlinuz and lib/modules/<version>/ (scripts/kernel.sh prints it)")
	agentPath := fs.String("agent", "", "ironwork-agent binary (default: go build ./cmd/ironwork-agent)")
	output := fs.String("output", "", "output directory")
	arch := fs.String("arch", ramdisk.AMD64, "architecture of the ramdisk: "+strings.Join(ramdisk.Arches(), " or "))
	rescue := fs.Bool("rescue", false, "build the rescue ramdisk (a busybox shell environment for the rescue user)")
	busybox := fs.String("busybox", ramdisk.DefaultBusybox, "with --rescue: a statically linked busybox (Debian package busybox-static)")
	dropbear := fs.String("dropbear", ramdisk.DefaultDropbear, "with --rescue: the dropbear SSH server to add, with its libraries (Debian package dropbear-bin); \"\" for no SSH")
	modules := fs.String("modules", "", "kernel modules to include, comma-separated (their dependencies come too; default: the architecture's set, "+strings.Join(ramdisk.DefaultModules(), ",")+" on amd64)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *kernelDir == "" || *output == "" {
		fmt.Fprintln(stderr, "ironwork ramdisk build: --kernel-dir and --output are required")
		return 2
	}
	if !slices.Contains(ramdisk.Arches(), *arch) {
		fmt.Fprintf(stderr, "ironwork ramdisk build: --arch %q: want one of %s\n", *arch, strings.Join(ramdisk.Arches(), ", "))
		return 2
	}
	if *agentPath == "" {
		built, cleanup, err := buildAgent(ctx, *arch, stderr)
		if err != nil {
			fmt.Fprintln(stderr, "ironwork ramdisk build:", err)
			return 1
		}
		defer cleanup()
		*agentPath = built
	}
	var names []string
	for _, m := range strings.Split(*modules, ",") {
		if m = strings.TrimSpace(m); m != "" {
			names = append(names, m)
		}
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	if names == nil && explicit["modules"] {
		names = []string{} // --modules "": none
	}
	if *rescue && *dropbear != "" && !explicit["dropbear"] {
		if _, err := os.Stat(*dropbear); err != nil {
			fmt.Fprintf(stderr, "ironwork ramdisk build: no SSH in the rescue ramdisk: %s is missing (Debian package dropbear-bin)\n", *dropbear)
			*dropbear = ""
		}
	}
	if !*rescue || (*arch != runtime.GOARCH && !explicit["dropbear"]) {
		*dropbear = "" // the host's dropbear runs on the host's architecture only
	}
	res, err := ramdisk.Build(ctx, ramdisk.BuildConfig{KernelDir: *kernelDir, Agent: *agentPath, Output: *output, Modules: names, Arch: *arch,
		Rescue: *rescue, Busybox: *busybox, Dropbear: *dropbear})
	if err != nil {
		fmt.Fprintln(stderr, "ironwork ramdisk build:", err)
		return 1
	}
	fmt.Fprintf(stdout, "kernel %s\n", res.KernelVersion)
	fmt.Fprintf(stdout, "%s\t%d bytes (%.1f MiB)\n", res.KernelPath, res.KernelSize, mib(res.KernelSize))
	fmt.Fprintf(stdout, "%s\t%d bytes (%.1f MiB gzip'd, %.1f MiB unpacked)\n", res.InitramfsPath, res.InitramfsSize, mib(res.InitramfsSize), mib(res.CPIOSize))
	fmt.Fprintf(stdout, "modules: %d included\n", len(res.Modules))
	if len(res.Builtin) > 0 {
		fmt.Fprintf(stdout, "built into the kernel: %s\n", strings.Join(res.Builtin, " "))
	}
	if len(res.Missing) > 0 {
		fmt.Fprintf(stdout, "not in this kernel (skipped): %s\n", strings.Join(res.Missing, " "))
	}
	return 0
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// buildAgent compiles cmd/ironwork-agent for arch from the source tree around the working
// directory.
func buildAgent(ctx context.Context, arch string, stderr io.Writer) (string, func(), error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", nil, errors.New("--agent is required: no go tool to build ironwork-agent with")
	}
	root, err := moduleRoot()
	if err != nil {
		return "", nil, fmt.Errorf("--agent is required: %w", err)
	}
	dir, err := os.MkdirTemp("", "ironwork-agent-build-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	out := filepath.Join(dir, "ironwork-agent")
	cmd := exec.CommandContext(ctx, goTool, "build", "-trimpath", "-ldflags", "-s -w -X main.version="+version, "-o", out, "./cmd/ironwork-agent")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	var msg bytes.Buffer
	cmd.Stdout, cmd.Stderr = &msg, &msg
	fmt.Fprintln(stderr, "building ironwork-agent for", arch, "in", root)
	if err := cmd.Run(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("go build ironwork-agent: %w: %s", err, strings.TrimSpace(msg.String()))
	}
	return out, cleanup, nil
}

// moduleRoot finds the ironwork source tree from the working directory upwards.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/ironwork/ironwork\n")) {
			if _, err := os.Stat(filepath.Join(dir, "cmd/ironwork-agent")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the ironwork source tree")
		}
		dir = parent
	}
}
