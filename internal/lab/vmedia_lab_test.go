package lab_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ironwork/ironwork/internal/lab"
)

// TestLabVirtualMedia boots the deploy ramdisk from virtual media with no DHCP server on the
// machines' network: a SeaBIOS and an OVMF machine, both Redfish through the vbmc, on the
// media segment (a bridge the server's DHCP, TFTP and HTTP boot services are not on), with
// redfish-virtual-media and a static address in network_data. At once: the SeaBIOS one goes
// through the lab's cycle (manage, in-band inspection through the virtual CD, provide,
// deploy, the instance's boot from disk, undeploy; automated_clean false); the OVMF one
// through the requests Metal3's baremetal-operator makes (metal3Flow). Nothing stays
// inserted and no boot ISO stays on the HTTP boot server.
func TestLabVirtualMedia(tt *testing.T) {
	t := newLabT(tt)
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and taps")
	}
	kernel := lab.FindKernel()
	if err := lab.Check(kernel); err != nil {
		t.Skip(err)
	}
	for _, tool := range []string{"grub-mkimage", "mformat", "mcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the boot ISO needs %s: run scripts/deps.sh", tool)
		}
	}
	begin := time.Now()
	t.Parallel() // two labs at a time (scripts/test.sh: -parallel 2)
	ironworkBin, agentBin := labBinaries(t)
	t.Logf("builds: %.1f s", time.Since(begin).Seconds())
	dir := filepath.Join(t.TempDir(), "lab")
	ns := fmt.Sprintf("iwlabv-%d", os.Getpid()%10000)
	var logs bytes.Buffer
	opts := lab.Options{Dir: dir, Netns: ns, Subnet: "10.216.0", Ironwork: ironworkBin,
		Agent: agentBin, KernelDir: kernel, Cache: labCache(), Log: &logs,
		Nodes: []lab.NodeSpec{
			{Name: "a-bios-vmedia", Firmware: "bios", Power: "redfish", Boot: lab.BootVirtualMedia},
			{Name: "b-uefi-vmedia", Firmware: "uefi", Power: "redfish", Boot: lab.BootVirtualMedia},
		}}
	start := time.Now()
	runningLabs.track(t, dir)
	st, err := lab.Up(context.Background(), opts)
	t.Cleanup(func() {
		if err := lab.Down(dir, nil); err != nil {
			t.Errorf("lab down: %v", err)
		}
		if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), ns) {
			t.Errorf("network namespace %s is left after down: %s", ns, out)
		}
	})
	if err != nil {
		t.Logf("lab up's log:\n%s", logs.String())
		t.Fatalf("lab up: %v", err)
	}
	t.Logf("lab up (ramdisk, image, namespace, server, BMC, enrolment): %.1f s", time.Since(start).Seconds())
	defer t.dumpIfFailed(dir, 60, "serve.log", "vbmc.log", "a-bios-vmedia.serial.log", "b-uefi-vmedia.serial.log")
	ctx := context.Background()
	c := st.Client()

	// The machines' taps are on the media bridge only; the server's boot services are on br0.
	out, err := exec.Command("ip", "-n", ns, "-o", "link", "show", "master", lab.MediaBridge).Output()
	if err != nil {
		t.Fatalf("list %s's ports: %v", lab.MediaBridge, err)
	}
	for _, n := range st.Nodes {
		if !strings.Contains(string(out), " "+n.Tap+":") && !strings.Contains(string(out), " "+n.Tap+"@") {
			t.Fatalf("%s's tap %s is not on %s: %s", n.Name, n.Tap, lab.MediaBridge, out)
		}
		var node struct {
			BootInterface string         `json:"boot_interface"`
			NetworkData   map[string]any `json:"network_data"`
		}
		if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+n.UUID, nil, &node); err != nil {
			t.Fatal(err)
		}
		if node.BootInterface != lab.VirtualMediaBootInterface || node.NetworkData == nil {
			t.Fatalf("%s: boot_interface %q, network_data %v: want %s with network_data", n.Name, node.BootInterface, node.NetworkData, lab.VirtualMediaBootInterface)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "serve.log")); bytes.Contains(b, []byte(lab.MediaBridge)) {
		t.Fatalf("the server was configured on %s", lab.MediaBridge)
	}

	// At once: the SeaBIOS machine through the lab's cycle with in-band inspection first, the
	// OVMF one through Metal3's requests.
	// The SeaBIOS machine is not cleaned (automated_clean false: provide and undeploy go
	// straight to available): the Metal3 flow cleans its machine through virtual media, and
	// TestLabEndToEnd asserts cleaning itself; this one still boots the ramdisk from the
	// virtual CD twice (inspection, deploy).
	if err := c.Do(ctx, http.MethodPatch, "/v1/nodes/"+st.Nodes[0].UUID, []map[string]any{{"op": "replace", "path": "/automated_clean", "value": false}}, nil); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var cycle []lab.Result
	var metal3Phases []lab.Phase
	var metal3Err error
	wg.Add(2)
	go func() {
		defer wg.Done()
		cycle = lab.Cycle(ctx, st, []string{"a-bios-vmedia"}, lab.CycleOptions{Timeout: 8 * time.Minute, Inspect: true})
	}()
	go func() {
		defer wg.Done()
		metal3Phases, metal3Err = metal3Flow(ctx, t, st, "b-uefi-vmedia")
	}()
	wg.Wait()
	t.Logf("lab up and both flows: %.1f s", time.Since(start).Seconds())
	for _, p := range metal3Phases {
		t.Logf("b-uefi-vmedia (metal3): %-40s %6.1f s", p.Name, p.Duration.Seconds())
	}
	if metal3Err != nil {
		t.Errorf("b-uefi-vmedia (metal3): %v", metal3Err)
	}
	for _, r := range cycle {
		for _, p := range r.Phases {
			t.Logf("%s: %-40s %6.1f s", r.Node, p.Name, p.Duration.Seconds())
		}
		if r.Err != nil {
			t.Errorf("%s: %v", r.Node, r.Err)
			continue
		}
		n, _ := st.Node(r.Node)
		if !strings.Contains(r.BootedLine, "firmware="+n.Firmware) {
			t.Errorf("%s: the instance reported %q, want firmware=%s", r.Node, r.BootedLine, n.Firmware)
		}
		t.Logf("%s: inspected %s", r.Node, lab.FormatProperties(r.Properties))
		if caps := fmt.Sprint(r.Properties["capabilities"]); !strings.Contains(caps, "boot_mode:"+n.Firmware) {
			t.Errorf("%s: inspected capabilities %q, want boot_mode:%s", r.Node, caps, n.Firmware)
		}
	}
	vbmcLog, _ := os.ReadFile(filepath.Join(dir, "vbmc.log"))
	for _, n := range st.Nodes {
		// The agent configured its static address from the CD's network_data, no DHCP.
		serial, _ := os.ReadFile(n.Serial)
		if !bytes.Contains(serial, []byte("configured from network_data")) || !bytes.Contains(serial, []byte(n.Address)) {
			t.Errorf("%s: the serial console does not show the static network from network_data (%s)", n.Name, n.Address)
		}
		if bytes.Contains(serial, []byte("network: DHCP")) {
			t.Errorf("%s: the agent ran DHCP although network_data gave a static address", n.Name)
		}
		// The BMC fetched the server's ISOs, and the drive is empty again.
		inserted := 0
		for _, l := range strings.Split(string(vbmcLog), "\n") {
			if strings.Contains(l, `msg="virtual media"`) && strings.Contains(l, "vm="+n.Name+" ") && strings.Contains(l, "/vmedia/") {
				inserted++
			}
		}
		t.Logf("%s: %d boot ISOs inserted by the BMC", n.Name, inserted)
		if inserted == 0 {
			t.Errorf("%s: the vbmc log shows no ISO inserted from the server's /vmedia/", n.Name)
		}
		var cd struct {
			Inserted bool
			Image    *string
		}
		if err := redfishGet(ctx, n.BMCAddress+"/redfish/v1/Managers/"+n.Name+"/VirtualMedia/Cd", &cd); err != nil {
			t.Errorf("%s: %v", n.Name, err)
		} else if cd.Inserted || (cd.Image != nil && *cd.Image != "") {
			t.Errorf("%s: the virtual CD still holds %v at the end", n.Name, *cd.Image)
		}
	}
	if isos, _ := filepath.Glob(filepath.Join(dir, "data", "boot", "vmedia", "*", "*.iso")); len(isos) > 0 {
		t.Errorf("boot ISOs left on the HTTP boot server: %v", isos)
	}
}

// redfishGet reads a Redfish resource of the lab's vbmc.
func redfishGet(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(lab.BMCUser, lab.BMCPassword)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
