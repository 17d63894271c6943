package vbmc

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Hardware is what a machine's QEMU command line says it has: the Redfish service serves it
// as the System's Processors, Memory, SimpleStorage, Storage and EthernetInterfaces, for
// out-of-band inspection.
type Hardware struct {
	CPUs     int
	MemoryMB int64
	Arch     string  // Redfish ProcessorArchitecture: x86, ARM
	UEFI     bool    // firmware in pflash (OVMF)
	Disks    []int64 // bytes, in command-line order (the backing files' sizes)
	MACs     []string
}

// HardwareFromCommand reads -smp, -m, -drive file=... (not pflash), the NICs' mac= and the
// QEMU binary's architecture from a command line. QEMU's defaults fill what is not given
// (one CPU, 128 MiB); a disk whose file cannot be read is reported with size 0.
func HardwareFromCommand(cmd []string) Hardware {
	hw := Hardware{CPUs: 1, MemoryMB: 128, Arch: "x86"}
	for i := 0; i < len(cmd); i++ {
		arg := cmd[i]
		if strings.HasPrefix(filepath.Base(arg), "qemu-system-") {
			if strings.HasSuffix(arg, "aarch64") || strings.HasSuffix(arg, "arm") {
				hw.Arch = "ARM"
			}
			continue
		}
		if !strings.HasPrefix(arg, "-") || i+1 >= len(cmd) {
			continue
		}
		val := cmd[i+1]
		opts := qemuOpts(val)
		switch strings.TrimPrefix(arg, "-") {
		case "smp":
			n := opts["cpus"]
			if n == "" {
				n = opts[""]
			}
			if v, err := strconv.Atoi(n); err == nil && v > 0 {
				hw.CPUs = v
			}
		case "m":
			s := opts["size"]
			if s == "" {
				s = opts[""]
			}
			if v := qemuSizeMB(s); v > 0 {
				hw.MemoryMB = v
			}
		case "drive":
			if opts["if"] == "pflash" {
				hw.UEFI = true
				continue
			}
			if opts["media"] == "cdrom" || opts["file"] == "" {
				continue
			}
			var size int64
			if st, err := os.Stat(opts["file"]); err == nil {
				size = st.Size()
			}
			hw.Disks = append(hw.Disks, size)
		case "device", "nic":
			if mac, err := net.ParseMAC(opts["mac"]); err == nil && len(mac) == 6 {
				hw.MACs = append(hw.MACs, mac.String())
			}
		case "bios":
			if strings.Contains(strings.ToLower(val), "ovmf") {
				hw.UEFI = true
			}
		}
	}
	return hw
}

// qemuOpts splits "a,k=v,k2=v2": the bare first item under "".
func qemuOpts(s string) map[string]string {
	out := map[string]string{}
	for i, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		switch {
		case ok:
			out[k] = v
		case i == 0:
			out[""] = part
		}
	}
	return out
}

// qemuSizeMB reads -m's size: a number of MiB, or with a suffix M, G or T.
func qemuSizeMB(s string) int64 {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "G") || strings.HasSuffix(s, "g"):
		mult, s = 1024, s[:len(s)-1]
	case strings.HasSuffix(s, "T") || strings.HasSuffix(s, "t"):
		mult, s = 1024*1024, s[:len(s)-1]
	case strings.HasSuffix(s, "M") || strings.HasSuffix(s, "m"):
		s = s[:len(s)-1]
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 || v > 1<<40/mult {
		return 0
	}
	return v * mult
}

// hardwareLinks are the System's links to its hardware collections and its summaries.
func hardwareLinks(path string, hw Hardware) map[string]any {
	return map[string]any{
		"Processors":         map[string]any{"@odata.id": path + "/Processors"},
		"Memory":             map[string]any{"@odata.id": path + "/Memory"},
		"SimpleStorage":      map[string]any{"@odata.id": path + "/SimpleStorage"},
		"Storage":            map[string]any{"@odata.id": path + "/Storage"},
		"EthernetInterfaces": map[string]any{"@odata.id": path + "/EthernetInterfaces"},
		"ProcessorSummary":   map[string]any{"Count": 1, "LogicalProcessorCount": hw.CPUs, "CoreCount": hw.CPUs},
		"MemorySummary":      map[string]any{"TotalSystemMemoryGiB": float64(hw.MemoryMB) / 1024},
	}
}

var enabled = map[string]any{"State": "Enabled", "Health": "OK"}

func collection(path, typ string, members []string) map[string]any {
	refs := make([]map[string]any, len(members))
	for i, m := range members {
		refs[i] = map[string]any{"@odata.id": path + "/" + m}
	}
	return map[string]any{"@odata.id": path, "@odata.type": "#" + typ + "Collection." + typ + "Collection",
		"Name": typ + " Collection", "Members@odata.count": len(refs), "Members": refs}
}

// hardwareResource answers GET of a System's hardware resource: sub is the path under the
// System ("Processors", "Memory/DIMM0", ...). ok is false for a path it does not serve.
func hardwareResource(sysPath, sub string, hw Hardware) (map[string]any, bool) {
	p := sysPath + "/" + sub
	parts := strings.Split(sub, "/")
	disks := make([]string, len(hw.Disks))
	for i := range hw.Disks {
		disks[i] = strconv.Itoa(i)
	}
	nics := make([]string, len(hw.MACs))
	for i, mac := range hw.MACs {
		nics[i] = strings.ReplaceAll(mac, ":", "")
	}
	index := func(s string, n int) (int, bool) {
		i, err := strconv.Atoi(s)
		return i, err == nil && i >= 0 && i < n && strconv.Itoa(i) == s
	}
	switch {
	case sub == "Processors":
		return collection(p, "Processor", []string{"CPU0"}), true
	case sub == "Processors/CPU0":
		return map[string]any{"@odata.id": p, "@odata.type": "#Processor.v1_10_0.Processor", "Id": "CPU0", "Name": "Processor",
			"ProcessorType": "CPU", "ProcessorArchitecture": hw.Arch, "InstructionSet": map[string]string{"x86": "x86-64", "ARM": "ARM-A64"}[hw.Arch],
			"Model": "QEMU Virtual CPU", "TotalCores": hw.CPUs, "TotalThreads": hw.CPUs, "Status": enabled}, true
	case sub == "Memory":
		return collection(p, "Memory", []string{"DIMM0"}), true
	case sub == "Memory/DIMM0":
		return map[string]any{"@odata.id": p, "@odata.type": "#Memory.v1_10_0.Memory", "Id": "DIMM0", "Name": "DIMM0",
			"MemoryType": "DRAM", "CapacityMiB": hw.MemoryMB, "Status": enabled}, true
	case sub == "SimpleStorage":
		return collection(p, "SimpleStorage", []string{"0"}), true
	case sub == "SimpleStorage/0":
		devs := make([]map[string]any, len(hw.Disks))
		for i, size := range hw.Disks {
			devs[i] = map[string]any{"Name": fmt.Sprintf("Disk %d", i), "CapacityBytes": size, "Status": enabled}
		}
		return map[string]any{"@odata.id": p, "@odata.type": "#SimpleStorage.v1_3_0.SimpleStorage", "Id": "0",
			"Name": "Virtual disk controller", "Devices": devs, "Status": enabled}, true
	case sub == "Storage":
		return collection(p, "Storage", []string{"0"}), true
	case sub == "Storage/0":
		refs := make([]map[string]any, len(disks))
		for i, d := range disks {
			refs[i] = map[string]any{"@odata.id": p + "/Drives/" + d}
		}
		return map[string]any{"@odata.id": p, "@odata.type": "#Storage.v1_9_0.Storage", "Id": "0", "Name": "Virtual storage",
			"Drives": refs, "Drives@odata.count": len(refs), "Status": enabled}, true
	case len(parts) == 4 && parts[0] == "Storage" && parts[1] == "0" && parts[2] == "Drives":
		i, ok := index(parts[3], len(hw.Disks))
		if !ok {
			return nil, false
		}
		return map[string]any{"@odata.id": p, "@odata.type": "#Drive.v1_9_0.Drive", "Id": parts[3], "Name": "Disk " + parts[3],
			"MediaType": "HDD", "CapacityBytes": hw.Disks[i], "Status": enabled}, true
	case sub == "EthernetInterfaces":
		return collection(p, "EthernetInterface", nics), true
	case len(parts) == 2 && parts[0] == "EthernetInterfaces":
		for i, id := range nics {
			if id == parts[1] {
				return map[string]any{"@odata.id": p, "@odata.type": "#EthernetInterface.v1_5_0.EthernetInterface", "Id": id,
					"Name": fmt.Sprintf("NIC %d", i), "MACAddress": hw.MACs[i], "PermanentMACAddress": hw.MACs[i],
					"LinkStatus": "LinkUp", "Status": enabled}, true
			}
		}
	}
	return nil, false
}

// serveHardware answers a GET under a System that is not the System itself.
func (v *VBMC) serveHardware(w http.ResponseWriter, r *http.Request, m *Machine, sub string) {
	if r.Method != http.MethodGet {
		redfishError(w, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
		return
	}
	doc, ok := hardwareResource("/redfish/v1/Systems/"+m.Name, sub, HardwareFromCommand(m.Command))
	if !ok {
		redfishError(w, http.StatusNotFound, "no resource at "+r.URL.Path)
		return
	}
	writeJSON(w, http.StatusOK, doc)
}
