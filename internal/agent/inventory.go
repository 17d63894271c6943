package agent

import (
	"bufio"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Inventory is the node's hardware as ironic-python-agent reports it (its "inventory"
// JSON: what inspection stores and poll.get_hardware_info answers).
type Inventory struct {
	Interfaces   []InventoryInterface `json:"interfaces"`
	CPU          InventoryCPU         `json:"cpu"`
	Disks        []InventoryDisk      `json:"disks"`
	Memory       InventoryMemory      `json:"memory"`
	BMCAddress   *string              `json:"bmc_address"`
	BMCV6Address *string              `json:"bmc_v6address"`
	SystemVendor InventorySystem      `json:"system_vendor"`
	Boot         InventoryBoot        `json:"boot"`
	Hostname     string               `json:"hostname"`
}

// InventoryInterface is one NIC.
type InventoryInterface struct {
	Name        string  `json:"name"`
	MACAddress  string  `json:"mac_address"`
	IPv4Address *string `json:"ipv4_address"`
	IPv6Address *string `json:"ipv6_address"`
	HasCarrier  bool    `json:"has_carrier"`
	// LLDP is IPA's list of [type, "hex value"] pairs (LLDPTLV.Pair), nil (null) when not
	// listened for. Kept untyped so that an inventory from any agent reads, whatever its
	// entries; the conductor skips entries it cannot use.
	LLDP        []any   `json:"lldp"`
	Vendor      *string `json:"vendor"`  // PCI vendor ID, "0x8086"
	Product     *string `json:"product"` // PCI device ID
	ClientID    *string `json:"client_id"`
	BIOSDevName *string `json:"biosdevname"`
	SpeedMbps   *int64  `json:"speed_mbps"`
}

// InventoryCPU describes the processors.
type InventoryCPU struct {
	ModelName    string   `json:"model_name"`
	Frequency    string   `json:"frequency"` // MHz
	Count        int      `json:"count"`     // logical CPUs
	Architecture string   `json:"architecture"`
	Flags        []string `json:"flags"`
	SocketCount  int      `json:"socket_count"`
}

// InventoryDisk is one block device.
type InventoryDisk struct {
	Name               string  `json:"name"`
	Model              string  `json:"model"`
	Size               int64   `json:"size"`
	Rotational         bool    `json:"rotational"`
	WWN                *string `json:"wwn"`
	Serial             *string `json:"serial"`
	Vendor             string  `json:"vendor"`
	WWNWithExtension   *string `json:"wwn_with_extension"`
	WWNVendorExtension *string `json:"wwn_vendor_extension"`
	HCTL               *string `json:"hctl"`
	ByPath             *string `json:"by_path"`
}

// InventoryMemory: total is what the kernel manages (bytes), physical_mb the installed RAM.
type InventoryMemory struct {
	Total      int64 `json:"total"`
	PhysicalMB int64 `json:"physical_mb"`
}

// InventorySystem is the DMI identity.
type InventorySystem struct {
	ProductName  string            `json:"product_name"`
	SerialNumber string            `json:"serial_number"`
	Manufacturer string            `json:"manufacturer"`
	Firmware     InventoryFirmware `json:"firmware"`
}

// InventoryFirmware is the BIOS/UEFI firmware's identity.
type InventoryFirmware struct {
	Vendor    string `json:"vendor"`
	Version   string `json:"version"`
	BuildDate string `json:"build_date"`
}

// InventoryBoot is how the node booted.
type InventoryBoot struct {
	CurrentBootMode string  `json:"current_boot_mode"` // "uefi" or "bios"
	PXEInterface    *string `json:"pxe_interface"`     // MAC of BOOTIF
}

// InventoryOptions say where to look.
type InventoryOptions struct {
	SysRoot string // "/" on a node; a fake tree in tests
	BootMAC string // from BOOTIF, if known
}

// Bounds of an inventory: a machine with more is reported in part (the first ones by name),
// so that what the agent posts stays well under the API's body limit.
const (
	maxInventoryNICs  = 128
	maxInventoryDisks = 256
	maxCPUFlags       = 512
	maxInventoryText  = 256 // bytes of one string read from the kernel or firmware
)

// CollectInventory reads the node's hardware from /proc/cpuinfo, /proc/meminfo,
// /sys/devices/system/memory, /sys/class/net, /sys/block (ListDisks) and /sys/class/dmi/id
// under opts.SysRoot. IP addresses come from the running system's interfaces when SysRoot is
// "/". Missing sources leave fields empty; only an unreadable disk list is an error.
func CollectInventory(opts InventoryOptions) (Inventory, error) {
	root := opts.SysRoot
	if root == "" {
		root = "/"
	}
	inv := Inventory{
		CPU:          readCPU(root),
		Memory:       readMemory(root),
		SystemVendor: readDMI(root),
		Interfaces:   readNICs(root),
		Boot:         InventoryBoot{CurrentBootMode: "bios"},
	}
	if _, err := os.Stat(filepath.Join(root, "sys/firmware/efi")); err == nil {
		inv.Boot.CurrentBootMode = "uefi"
	}
	if opts.BootMAC != "" {
		mac := strings.ToLower(opts.BootMAC)
		inv.Boot.PXEInterface = &mac
	}
	if root == "/" {
		inv.Hostname, _ = os.Hostname()
	}
	// No IPMI device (a VM, or no BMC) leaves bmc_address null; a device that does not
	// answer is not worth failing an inventory for either.
	if addr, err := readBMCAddress(root); err == nil && addr != "" {
		inv.BMCAddress = &addr
	}
	disks, err := ListDisks(root)
	if err != nil {
		return Inventory{}, fmt.Errorf("collect inventory: %w", err)
	}
	inv.Disks = make([]InventoryDisk, 0, len(disks))
	for _, d := range disks {
		inv.Disks = append(inv.Disks, InventoryDisk{
			Name: d.Name, Model: d.Model, Size: d.Size, Rotational: d.Rotational, Vendor: d.Vendor,
			WWN: optional(d.WWN), Serial: optional(d.Serial), WWNWithExtension: optional(d.WWNWithExtension),
			WWNVendorExtension: optional(d.WWNVendorExtension), HCTL: optional(d.HCTL), ByPath: optional(d.ByPath),
		})
	}
	if inv.Interfaces == nil {
		inv.Interfaces = []InventoryInterface{}
	}
	inv.bound()
	return inv, nil
}

// AddLLDP sets each interface's lldp from what ListenLLDP heard on it; interfaces that heard
// nothing get an empty list (listened, nothing heard), as IPA reports them.
func (inv *Inventory) AddLLDP(heard map[string][]LLDPTLV) {
	for i := range inv.Interfaces {
		pairs := []any{}
		for _, tlv := range heard[inv.Interfaces[i].Name] {
			pairs = append(pairs, tlv.Pair())
		}
		inv.Interfaces[i].LLDP = pairs
	}
}

// InterfaceNames are the names of the inventory's NICs.
func (inv *Inventory) InterfaceNames() []string {
	names := make([]string, len(inv.Interfaces))
	for i, n := range inv.Interfaces {
		names[i] = n.Name
	}
	return names
}

// bound cuts lists and strings to the inventory's bounds.
func (inv *Inventory) bound() {
	if len(inv.Interfaces) > maxInventoryNICs {
		inv.Interfaces = inv.Interfaces[:maxInventoryNICs]
	}
	if len(inv.Disks) > maxInventoryDisks {
		inv.Disks = inv.Disks[:maxInventoryDisks]
	}
	if len(inv.CPU.Flags) > maxCPUFlags {
		inv.CPU.Flags = inv.CPU.Flags[:maxCPUFlags]
	}
	for _, p := range []*string{&inv.CPU.ModelName, &inv.CPU.Frequency, &inv.SystemVendor.ProductName,
		&inv.SystemVendor.SerialNumber, &inv.SystemVendor.Manufacturer, &inv.SystemVendor.Firmware.Vendor,
		&inv.SystemVendor.Firmware.Version, &inv.SystemVendor.Firmware.BuildDate, &inv.Hostname} {
		*p = clip(*p)
	}
	for i := range inv.CPU.Flags {
		inv.CPU.Flags[i] = clip(inv.CPU.Flags[i])
	}
	for i := range inv.Disks {
		d := &inv.Disks[i]
		d.Model, d.Vendor = clip(d.Model), clip(d.Vendor)
		for _, p := range []*string{d.WWN, d.Serial, d.WWNWithExtension, d.WWNVendorExtension, d.HCTL, d.ByPath} {
			if p != nil {
				*p = clip(*p)
			}
		}
	}
}

// clip keeps at most maxInventoryText bytes of s, cut at a rune boundary.
func clip(s string) string {
	if len(s) <= maxInventoryText {
		return s
	}
	cut := maxInventoryText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func readCPU(root string) InventoryCPU {
	cpu := InventoryCPU{Architecture: goArchToUname(runtime.GOARCH), Flags: []string{}}
	f, err := os.Open(filepath.Join(root, "proc/cpuinfo"))
	if err != nil {
		return cpu
	}
	defer f.Close()
	sockets := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch key {
		case "processor":
			cpu.Count++
		case "model name":
			if cpu.ModelName == "" {
				cpu.ModelName = value
			}
		case "cpu MHz":
			if cpu.Frequency == "" {
				cpu.Frequency = value
			}
		case "physical id":
			sockets[value] = true
		case "flags":
			if len(cpu.Flags) == 0 {
				cpu.Flags = strings.Fields(value)
			}
		}
	}
	cpu.SocketCount = len(sockets)
	if cpu.SocketCount == 0 && cpu.Count > 0 {
		cpu.SocketCount = 1
	}
	return cpu
}

func goArchToUname(arch string) string {
	switch arch {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return arch
}

func readMemory(root string) InventoryMemory {
	var mem InventoryMemory
	if f, err := os.Open(filepath.Join(root, "proc/meminfo")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) >= 2 && fields[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(fields[1], 10, 64); err == nil && kb > 0 && kb <= math.MaxInt64/1024 {
					mem.Total = kb * 1024
				}
			}
		}
		f.Close()
	}
	// Installed memory: online memory blocks times the block size (what lsmem sums); the
	// kernel's MemTotal lacks what firmware and the kernel itself reserve.
	dir := filepath.Join(root, "sys/devices/system/memory")
	if raw := readSysString(filepath.Join(dir, "block_size_bytes")); raw != "" {
		if bs, err := strconv.ParseInt(raw, 16, 64); err == nil && bs > 0 {
			blocks, _ := filepath.Glob(filepath.Join(dir, "memory*"))
			var online int64
			for _, b := range blocks {
				if readSysString(filepath.Join(b, "online")) == "1" {
					online++
				}
			}
			if online <= math.MaxInt64/bs {
				mem.PhysicalMB = online * bs >> 20
			}
		}
	}
	if mem.PhysicalMB == 0 && mem.Total > 0 {
		mem.PhysicalMB = mem.Total >> 20 // rounded up below, without overflowing near the maximum
		if mem.Total&(1<<20-1) != 0 {
			mem.PhysicalMB++
		}
	}
	return mem
}

func readDMI(root string) InventorySystem {
	dir := filepath.Join(root, "sys/class/dmi/id")
	get := func(name string) string { return readSysString(filepath.Join(dir, name)) }
	return InventorySystem{
		ProductName:  get("product_name"),
		SerialNumber: get("product_serial"),
		Manufacturer: get("sys_vendor"),
		Firmware:     InventoryFirmware{Vendor: get("bios_vendor"), Version: get("bios_version"), BuildDate: get("bios_date")},
	}
}

func readNICs(root string) []InventoryInterface {
	dir := filepath.Join(root, "sys/class/net")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []InventoryInterface
	for _, e := range entries {
		name := e.Name()
		nd := filepath.Join(dir, name)
		mac := strings.ToLower(readSysString(filepath.Join(nd, "address")))
		// Ethernet only (type 1), and not loopback or virtual devices without a backing device.
		if readSysString(filepath.Join(nd, "type")) != "1" || len(mac) != 17 || mac == "00:00:00:00:00:00" {
			continue
		}
		if _, err := os.Stat(filepath.Join(nd, "device")); err != nil {
			continue
		}
		nic := InventoryInterface{
			Name:       name,
			MACAddress: mac,
			HasCarrier: readSysString(filepath.Join(nd, "carrier")) == "1",
			Vendor:     optional(readSysString(filepath.Join(nd, "device/vendor"))),
			Product:    optional(readSysString(filepath.Join(nd, "device/device"))),
		}
		if v, err := readSysInt(filepath.Join(nd, "speed")); err == nil && v > 0 {
			nic.SpeedMbps = &v
		}
		if root == "/" {
			nic.IPv4Address, nic.IPv6Address = interfaceAddrs(name)
		}
		out = append(out, nic)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func interfaceAddrs(name string) (v4, v6 *string) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return nil, nil
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return nil, nil
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		s := ipn.IP.String()
		switch {
		case ipn.IP.To4() != nil && v4 == nil:
			v4 = &s
		case ipn.IP.To4() == nil && v6 == nil && !ipn.IP.IsLinkLocalUnicast():
			v6 = &s
		}
	}
	return v4, v6
}
