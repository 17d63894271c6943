package lab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ironwork/ironwork/internal/netns"
)

// Layouts of a lab (Options.Layout).
const (
	// LayoutLab runs `ironwork serve` outside the provisioning namespace, its boot sockets
	// opened inside it (provisioning_netns); the BMCs listen on the host's loopback.
	LayoutLab = "lab"
	// LayoutProduction runs everything as on a real conductor host, inside the provisioning
	// network: `ironwork serve` in the namespace with no namespace setting, the BMCs on the
	// namespace's loopback, and a separate HTTP server (busybox httpd on its own address)
	// serving the deploy kernel, ramdisk and image to nodes enrolled as in Ironic.
	LayoutProduction = "production"
)

// imageServerPort is the production layout's image server port.
const imageServerPort = 8000

// productionAPIURL is the server's default API address, which in the production layout is
// the namespace's loopback.
const productionAPIURL = "http://127.0.0.1:6385"

func imageServerAddr(st *State) string { return st.Subnet + ".2" }

func imageURL(st *State, name string) string {
	return fmt.Sprintf("http://%s:%d/%s", imageServerAddr(st), imageServerPort, name)
}

// check reports what the chosen layout needs and this machine lacks.
func (o *Options) check() error {
	switch o.Layout {
	case LayoutLab, LayoutProduction:
	default:
		return fmt.Errorf("lab layout %q is neither %s nor %s", o.Layout, LayoutLab, LayoutProduction)
	}
	err := Check(o.KernelDir)
	if o.Layout != LayoutProduction {
		return err
	}
	if o.Inspect || slices.ContainsFunc(o.Nodes, func(n NodeSpec) bool { return n.Inspect }) {
		err = errors.Join(err, errors.New("inspection at enrolment (Options.Inspect) is for the lab layout only"))
	}
	if out, e := exec.Command("busybox", "--list").Output(); e != nil || !strings.Contains("\n"+string(out), "\nhttpd\n") {
		err = errors.Join(err, errors.New("the production layout's image server: busybox with httpd: run scripts/deps.sh (Debian package busybox)"))
	}
	return err
}

// inLayout returns the command that runs bin with args where the layout runs its services:
// inside the namespace for the production layout, as it is otherwise. `ip netns exec`
// replaces itself with bin, so the pid startProc records is bin's.
func (s *State) inLayout(bin string, args ...string) (string, []string) {
	if s.Layout != LayoutProduction {
		return bin, args
	}
	return "ip", append([]string{"netns", "exec", s.Netns, bin}, args...)
}

// startImageServer serves DIR/images (the test image, built there, and the deploy kernel
// and ramdisk, linked there) with busybox httpd on the image server's address inside the
// namespace, and waits until it answers.
func startImageServer(ctx context.Context, st *State, kernel, initrd string) error {
	dir := filepath.Join(st.Dir, "images")
	for _, f := range []string{kernel, initrd} {
		dst := filepath.Join(dir, filepath.Base(f))
		_ = os.Remove(dst)
		if err := os.Link(f, dst); err != nil {
			return fmt.Errorf("put %s on the image server: %w", filepath.Base(f), err)
		}
	}
	addr := fmt.Sprintf("%s:%d", imageServerAddr(st), imageServerPort)
	bin, args := st.inLayout("busybox", "httpd", "-f", "-vv", "-p", addr, "-h", dir)
	if err := startProc(st, "images", bin, args...); err != nil {
		return err
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: netns.Dialer(st.Netns), DisableKeepAlives: true}}
	url := imageURL(st, filepath.Base(kernel))
	var err error
	for i := 0; i < 50; i++ {
		var req *http.Request
		if req, err = http.NewRequestWithContext(ctx, http.MethodHead, url, nil); err != nil {
			return err
		}
		var resp *http.Response
		if resp, err = hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("HEAD %s: %s", url, resp.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the image server did not answer: %w", err)
}

// startProductionServer runs `ironwork serve` inside the namespace with the defaults but for
// the data directory, the provisioning interface and DHCP's range (and the callback timeout
// when one is given): no provisioning_netns, the API on its default loopback address and
// port, the agents' endpoints on the bridge's address.
func startProductionServer(ctx context.Context, st *State, ironworkBin string, callbackTimeout time.Duration) error {
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir = %q\nlog_level = \"debug\"\nprovisioning_interface = %q\ndhcp_mode = \"full\"\ndhcp_range = \"%s.100,%s.199\"\n",
		filepath.Join(st.Dir, "data"), st.Bridge, st.Subnet, st.Subnet)
	if callbackTimeout > 0 {
		fmt.Fprintf(&b, "callback_timeout = %q\n", callbackTimeout.String())
	}
	cfgPath := filepath.Join(st.Dir, "ironwork.toml")
	if err := os.WriteFile(cfgPath, []byte(b.String()), 0o644); err != nil {
		return err
	}
	if err := st.update(func(s *State) { s.APIURL = productionAPIURL }); err != nil {
		return err
	}
	bin, args := st.inLayout(ironworkBin, "serve", "--config", cfgPath)
	if err := startProc(st, "serve", bin, args...); err != nil {
		return err
	}
	return waitAPI(ctx, st.Client(), st, 30*time.Second)
}

// enrolProduction enrols the nodes as an Ironic user would: the driver, its standard
// driver_info keys with the deploy kernel and ramdisk as HTTP URLs, no interface fields, and
// a port with the machine's MAC.
func enrolProduction(ctx context.Context, st *State, opts Options, kernel, initrd string) error {
	c := st.Client()
	for i, n := range st.Nodes {
		spec := opts.Nodes[i]
		di := bmcDriverInfo(n, spec.BMCPassword, imageURL(st, filepath.Base(kernel)), imageURL(st, filepath.Base(initrd)))
		var node map[string]any
		if err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": n.Name, "driver": n.Power,
			"driver_info": di, "resource_class": ResourceClass,
			"properties": map[string]any{"capabilities": "boot_mode:" + n.Firmware, "cpu_arch": "x86_64"}}, &node); err != nil {
			return fmt.Errorf("enrol %s: %w", n.Name, err)
		}
		uuid, _ := node["uuid"].(string)
		if err := st.update(func(s *State) { s.Nodes[i].UUID = uuid }); err != nil {
			return err
		}
		if err := c.Do(ctx, http.MethodPost, "/v1/ports", map[string]any{"node_uuid": uuid, "address": n.MAC, "pxe_enabled": true}, nil); err != nil {
			return fmt.Errorf("enrol the port of %s: %w", n.Name, err)
		}
		fmt.Fprintf(opts.Log, "node %s (%s): %s firmware, %s via %s at %s, MAC %s, rng %s, cpu %q\n",
			n.Name, uuid, n.Firmware, n.Power, n.BMC, n.BMCAddress, n.MAC, n.RNG, n.CPU)
	}
	return nil
}
