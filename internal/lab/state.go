package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// StateFile is the name of the state file in a lab directory.
const StateFile = "lab.json"

// Proc is a background process the lab started.
type Proc struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
	Log  string `json:"log"`
}

// Node is one virtual machine and its node in the server.
type Node struct {
	Name     string `json:"name"`
	UUID     string `json:"uuid,omitempty"`
	Firmware string `json:"firmware"` // bios or uefi
	Power    string `json:"power"`    // ipmi or redfish (driver)
	BMC      string `json:"bmc"`      // vbmc, ipmi_sim or none
	MAC      string `json:"mac"`
	Tap      string `json:"tap"`
	Disk     string `json:"disk"`
	Serial   string `json:"serial"`
	// SerialSocket is the machine's serial port as a unix socket (QEMU listens; what it
	// prints also goes to Serial): a program connects to type on the console, as a person
	// logging in would.
	SerialSocket string `json:"serial_socket,omitempty"`
	RNG          string `json:"rng,omitempty"` // virtio or none
	CPU          string `json:"cpu,omitempty"` // QEMU's -cpu, "" for its default
	// Arch is "arm64" for a machine under qemu-system-aarch64 (virt, AAVMF), else "" (x86_64).
	Arch string `json:"arch,omitempty"`
	// BMCAddress is host:port of the IPMI BMC or the Redfish service's URL.
	BMCAddress string `json:"bmc_address"`
	// The machine's shape: MAC, Tap and Disk above are the first of MACs, Taps and Disks.
	CPUs     int      `json:"cpus,omitempty"`
	MemoryMB int      `json:"memory_mb,omitempty"`
	MACs     []string `json:"macs,omitempty"`
	Taps     []string `json:"taps,omitempty"`
	Disks    []string `json:"disks,omitempty"`
	// Discover: the machine is not enrolled (UUID empty); it boots from the network for
	// discovery.
	Discover bool `json:"discover,omitempty"`
	// Boot is BootVirtualMedia for a machine on the media segment ("" or BootNetwork: it
	// network-boots); Address is then its static address there, from its network_data.
	Boot    string `json:"boot,omitempty"`
	Address string `json:"address,omitempty"`
	// Rack is the machine's rack: 0 or 1 the provisioning network, k >= 2 rack k behind the
	// relay (its tap in RouterNetns, on RackBridge(k)).
	Rack int `json:"rack,omitempty"`
}

// State is what a lab made, saved in the lab directory before each resource is created.
type State struct {
	Dir    string `json:"dir"`
	Netns  string `json:"netns"`
	Bridge string `json:"bridge"`
	Subnet string `json:"subnet"` // first three octets, e.g. 10.213.0
	// Layout is "lab" (or empty: labs made before layouts) or "production"; in the
	// production layout APIURL is an address inside Netns.
	Layout string `json:"layout,omitempty"`
	// MediaBridge and MediaSubnet are the segment of the virtual media machines (none
	// when no machine boots from virtual media).
	MediaBridge string `json:"media_bridge,omitempty"`
	MediaSubnet string `json:"media_subnet,omitempty"`
	// RouterNetns is the namespace of the racks' router and DHCP relay, and Racks the racks
	// behind it (none with one rack).
	RouterNetns string   `json:"router_netns,omitempty"`
	Racks       []Rack   `json:"racks,omitempty"`
	APIURL      string   `json:"api_url"`
	Procs       []Proc   `json:"procs"`
	Nodes       []Node   `json:"nodes"`
	Files       []string `json:"files"` // made outside Dir (none so far; Dir itself is removed)
	Image       string   `json:"image_url"`
	ImageSH     string   `json:"image_sha256"`
	// ImageARM64 and ImageARM64SH are the arm64 test image (when the lab has arm64 machines).
	ImageARM64   string `json:"image_arm64_url,omitempty"`
	ImageARM64SH string `json:"image_arm64_sha256,omitempty"`
	// ImageKernel and ImageRamdisk are the test image's kernel and initramfs, files inside
	// the server's file_url_allowed_paths (lab layout only): a ramdisk deploy's instance.
	ImageKernel  string `json:"image_kernel_url,omitempty"`
	ImageRamdisk string `json:"image_ramdisk_url,omitempty"`
	// Partition is the partition test image (Options.PartitionImage), else nil.
	Partition *PartitionImage `json:"partition_image,omitempty"`

	mu sync.Mutex
}

// PartitionImage is where the lab serves the partition test image: the root file system
// image, its checksum, and the kernel and initramfs for instance_info's kernel and ramdisk.
type PartitionImage struct {
	Image   string `json:"image_url"`
	SHA256  string `json:"image_sha256"`
	Kernel  string `json:"kernel_url"`
	Ramdisk string `json:"ramdisk_url"`
}

// Load reads the state of the lab in dir; a lab that was never started has none.
func Load(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no lab in %s (no %s): run 'ironwork lab up'", dir, StateFile)
	}
	if err != nil {
		return nil, fmt.Errorf("read lab state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("lab state %s: %w", filepath.Join(dir, StateFile), err)
	}
	return &s, nil
}

// update changes the state and writes it out (atomically) before the caller acts on it.
func (s *State) update(fn func(*State)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s)
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.Dir, StateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	return os.Rename(tmp, filepath.Join(s.Dir, StateFile))
}

// Node returns the node called name.
func (s *State) Node(name string) (Node, bool) {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// Ready reports whether Up finished: every process runs and every node is enrolled.
func (s *State) Ready() bool {
	if len(s.Nodes) == 0 || len(s.Procs) == 0 {
		return false
	}
	for _, p := range s.Procs {
		if p.PID == 0 || !alive(p.PID) {
			return false
		}
	}
	for _, n := range s.Nodes {
		if n.UUID == "" {
			return false
		}
	}
	return true
}
