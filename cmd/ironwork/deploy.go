package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/instance"
)

const deployUsage = `Usage: ironwork deploy --resource-class CLASS --image URL --hostname NAME [flags]

Picks an available node that matches (an allocation), attaches its VIFs, writes the instance's
config drive (hostname, SSH keys, user data, network data) and deploys the image on it, showing
the progress until the node is active; then prints the node and its addresses. A failure before
the deploy starts undoes the allocation and the VIFs; a failed deploy leaves the node in
"deploy failed" for inspection (take it back with 'ironwork undeploy NODE').

Flags:
`

const undeployUsage = `Usage: ironwork undeploy NODE [--wait DURATION]

Tears the node's instance down (cleaning runs when enabled), waits until the node is available
again, and detaches its VIFs and allocation.

Flags:
`

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// clientFlags adds the API flags every client command takes.
func clientFlags(fs *flag.FlagSet) func() *api.Client {
	endpoint := fs.String("url", "", "API endpoint (default $IRONWORK_URL, $OS_ENDPOINT or http://127.0.0.1:6385)")
	user := fs.String("username", os.Getenv("IRONWORK_USERNAME"), "HTTP basic user")
	pass := fs.String("password", "", "HTTP basic password (default $IRONWORK_PASSWORD)")
	return func() *api.Client {
		u := *endpoint
		if u == "" {
			u = firstEnv("IRONWORK_URL", "OS_ENDPOINT")
		}
		if u == "" {
			u = "http://127.0.0.1:6385"
		}
		p := *pass
		if p == "" {
			p = os.Getenv("IRONWORK_PASSWORD")
		}
		return &api.Client{BaseURL: u, Username: *user, Password: p}
	}
}

func runDeploy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ironwork deploy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, deployUsage); fs.PrintDefaults() }
	client := clientFlags(fs)
	var req instance.Request
	var traits, caps, candidates, keys, nets listFlag
	fs.StringVar(&req.ResourceClass, "resource-class", "", "resource class the node must have (required)")
	fs.Var(&traits, "trait", "trait the node must have; also selects deploy templates (repeatable)")
	fs.Var(&caps, "capability", "capability KEY=VALUE the node must have, e.g. cpu_arch=x86_64, boot_mode=uefi (repeatable)")
	fs.Var(&candidates, "candidate", "choose only among these nodes, by name or UUID (repeatable)")
	fs.StringVar(&req.Image, "image", "", "whole-disk image: http(s)://, file:// on the conductor, or oci://REGISTRY/REPO:TAG (or @sha256:...) (required)")
	pullSecret := fs.String("pull-secret-file", "", "file holding the registry credential of an oci:// image (docker config.json's auth value, or user:password)")
	fs.StringVar(&req.DownloadSource, "image-download-source", "", "http (the agent downloads the image) or local (through the conductor's cache); default: the conductor's")
	fs.StringVar(&req.Checksum, "checksum", "", "image checksum: hex digest (MD5, SHA-256 or SHA-512), ALGO:HEX, or a checksum file URL")
	fs.StringVar(&req.DiskFormat, "image-format", "", "raw or qcow2 (default: detected)")
	fs.Var(&keys, "ssh-key", "file with SSH public keys for the instance (repeatable)")
	fs.StringVar(&req.Hostname, "hostname", "", "host name of the instance (required)")
	userData := fs.String("user-data", "", "file handed to the instance as its user data (cloud-init)")
	fs.Var(&nets, "network", "a VIF and its configuration: dhcp, or vif=ID,ip=ADDR/PREFIX,gateway=ADDR,dns=ADDR (repeatable; default one VIF on DHCP)")
	fs.StringVar(&req.Owner, "owner", "", "owner of the allocation")
	wait := fs.Duration("wait", 30*time.Minute, "how long to wait for the node to become active (0: no limit)")
	output := fs.String("o", "table", "table or json")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "ironwork deploy: "+format+"\n", a...)
		return code
	}
	if fs.NArg() > 0 {
		return fail(2, "unexpected arguments %q", fs.Args())
	}
	req.Traits, req.Candidates = traits, candidates
	for _, c := range caps {
		k, v, ok := strings.Cut(c, "=")
		if !ok || k == "" {
			return fail(2, "--capability %q is not KEY=VALUE", c)
		}
		if req.Capabilities == nil {
			req.Capabilities = map[string]string{}
		}
		req.Capabilities[k] = v
	}
	for _, f := range keys {
		b, err := os.ReadFile(f)
		if err != nil {
			return fail(2, "read the SSH key: %v", err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				req.SSHKeys = append(req.SSHKeys, line)
			}
		}
	}
	if *pullSecret != "" {
		b, err := os.ReadFile(*pullSecret)
		if err != nil {
			return fail(2, "read the pull secret: %v", err)
		}
		req.PullSecret = strings.TrimSpace(string(b))
	}
	if *userData != "" {
		b, err := os.ReadFile(*userData)
		if err != nil {
			return fail(2, "read the user data: %v", err)
		}
		req.UserData = b
	}
	for _, n := range nets {
		nw, err := instance.ParseNetwork(n)
		if err != nil {
			return fail(2, "%v", err)
		}
		req.Networks = append(req.Networks, nw)
	}
	if *output != "table" && *output != "json" {
		return fail(2, "output format %q is not table or json", *output)
	}
	if err := req.Validate(); err != nil {
		return fail(2, "%v", err)
	}
	if *wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *wait)
		defer cancel()
	}
	p := newProgress(stderr)
	inst, err := instance.Deploy(ctx, client(), req, p.show)
	p.done()
	if err != nil {
		if instance.IsFailed(err) {
			fmt.Fprintf(stderr, "ironwork deploy: %v\nThe node is left as it is; take it back with: ironwork undeploy %s\n", err, inst.Node)
			return 1
		}
		return fail(1, "%v", err)
	}
	if *output == "json" {
		if err := printJSON(stdout, inst); err != nil {
			return fail(1, "%v", err)
		}
		return 0
	}
	fmt.Fprintf(stdout, "%s is active on node %s (%s), allocation %s\n", req.Hostname, inst.NodeName, inst.Node, inst.Allocation)
	for _, nic := range inst.NICs {
		fmt.Fprintf(stdout, "  VIF %s on port %s, MAC %s, address %s\n", nic.VIF, nic.Port, nic.MAC, nic.Address)
	}
	return 0
}

func runUndeploy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ironwork undeploy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, undeployUsage); fs.PrintDefaults() }
	client := clientFlags(fs)
	wait := fs.Duration("wait", 30*time.Minute, "how long to wait for the node to become available")
	node, code := oneArgument(fs, args)
	if code >= 0 {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	p := newProgress(stderr)
	err := instance.Undeploy(ctx, client(), node, time.Second, p.show)
	p.done()
	if err != nil {
		fmt.Fprintf(stderr, "ironwork undeploy: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "node %s is available\n", node)
	return 0
}

// progress prints a line each time the node's state or step changes, and the bytes the agent
// has written at most every few seconds.
type progress struct {
	w        io.Writer
	last     instance.Status
	lastByte time.Time
}

func newProgress(w io.Writer) *progress { return &progress{w: w} }

func (p *progress) show(st instance.Status) {
	changed := st.ProvisionState != p.last.ProvisionState || st.TargetState != p.last.TargetState || st.Step != p.last.Step
	bytesMoved := st.BytesDone != p.last.BytesDone && time.Since(p.lastByte) >= 3*time.Second
	if !changed && !bytesMoved {
		return
	}
	line := fmt.Sprintf("[%6.1fs] %s", st.Elapsed.Seconds(), st.ProvisionState)
	if st.TargetState != "" {
		line += " → " + st.TargetState
	}
	if st.Step != "" && st.Step != "<nil>.<nil>" {
		line += "  step " + st.Step
	}
	if st.BytesDone > 0 {
		line += "  " + humanBytes(st.BytesDone)
		if st.BytesTotal > 0 {
			line += fmt.Sprintf(" of %s (%d%%)", humanBytes(st.BytesTotal), st.BytesDone*100/st.BytesTotal)
		}
		p.lastByte = time.Now()
	}
	fmt.Fprintln(p.w, line)
	p.last = st
}

func (p *progress) done() {
	if p.last.LastError != "" {
		fmt.Fprintf(p.w, "last error: %s\n", p.last.LastError)
	}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// oneArgument parses a command's flags, which may come before or after its one positional
// argument (a node), and returns that argument; code is the exit code to return at once (0
// after -h, 2 on a usage error) or -1 to go on.
func oneArgument(fs *flag.FlagSet, args []string) (arg string, code int) {
	var pos []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return "", 0
			}
			return "", 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(pos) != 1 {
		fs.Usage()
		return "", 2
	}
	return pos[0], -1
}
