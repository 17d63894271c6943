package redfish

import (
	"context"
	"fmt"
	"math"
	"net"
	"slices"
	"strings"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// Out-of-band inspection, as Ironic's redfish inspect interface does it: the System's
// Processors, Memory (or MemorySummary), SimpleStorage and Storage, EthernetInterfaces
// and boot mode, read from the BMC with the node untouched.

var _ conductor.HardwareInspector = Interface{}

// minRootDisk is the smallest disk Ironic counts for local_gb (as IPA's root disk guess).
const minRootDisk = 4 << 30

// redfishArch maps ProcessorArchitecture to cpu_arch as Ironic does.
var redfishArch = map[schemas.ProcessorArchitecture]string{
	schemas.X86ProcessorArchitecture:   "x86_64",
	schemas.IA64ProcessorArchitecture:  "ia64",
	schemas.ARMProcessorArchitecture:   "aarch64",
	schemas.MIPSProcessorArchitecture:  "mips64",
	schemas.PowerProcessorArchitecture: "ppc64le",
}

// present is a Status that does not say the part is missing or turned off (many BMCs leave
// Status out, which counts as present).
func present(st schemas.Status) bool {
	return st.State == "" || st.State == schemas.EnabledState
}

// InspectHardware implements conductor.HardwareInspector. It fails, as Ironic does, when the
// BMC does not report the CPU count, CPU architecture or memory size.
func (d Interface) InspectHardware(ctx context.Context, t *conductor.Task) (*conductor.InspectResult, error) {
	sys, done, err := d.system(ctx, t)
	if err != nil {
		return nil, err
	}
	defer done()
	res := &conductor.InspectResult{}
	if err := inspectCPUs(sys, res); err != nil {
		return nil, err
	}
	if err := inspectMemory(sys, res); err != nil {
		return nil, err
	}
	if res.LocalGB, err = inspectLocalGB(sys); err != nil {
		return nil, err
	}
	switch sys.Boot.BootSourceOverrideMode {
	case schemas.UEFIBootSourceOverrideMode:
		res.BootMode = "uefi"
	case schemas.LegacyBootSourceOverrideMode:
		res.BootMode = "bios"
	}
	if res.MACs, err = inspectMACs(sys); err != nil {
		return nil, err
	}
	var missing []string
	if res.CPUs == 0 {
		missing = append(missing, "cpus")
	}
	if res.CPUArch == "" {
		missing = append(missing, "cpu_arch")
	}
	if res.MemoryMB == 0 {
		missing = append(missing, "memory_mb")
	}
	if len(missing) > 0 {
		return nil, ironwork.Errorf(ironwork.EINVALID, "Failed to discover the following properties: %s on node %s",
			strings.Join(missing, ", "), t.Node.UUID)
	}
	return res, nil
}

// inspectCPUs counts the logical CPUs (threads, else cores) of the present CPU-type
// processors and takes the first one's architecture.
func inspectCPUs(sys *schemas.ComputerSystem, res *conductor.InspectResult) error {
	procs, err := sys.Processors()
	if err != nil {
		return fmt.Errorf("read the processors of Redfish system %s: %w", sys.ID, err)
	}
	for _, p := range procs {
		if !present(p.Status) || p.ProcessorType != "" && p.ProcessorType != schemas.CPUProcessorType {
			continue
		}
		switch {
		case p.TotalThreads != nil && *p.TotalThreads > 0:
			res.CPUs += *p.TotalThreads
		case p.TotalCores != nil && *p.TotalCores > 0:
			res.CPUs += *p.TotalCores
		}
		if res.CPUArch == "" {
			res.CPUArch = redfishArch[p.ProcessorArchitecture]
		}
	}
	return nil
}

// inspectMemory sums the present memory modules (exact to the MiB), else takes
// MemorySummary.TotalSystemMemoryGiB (Ironic's source, which its client truncates to whole
// GiB: a 1.5 GiB machine reads as 1024 MiB there).
func inspectMemory(sys *schemas.ComputerSystem, res *conductor.InspectResult) error {
	mods, err := sys.Memory()
	if err != nil {
		return fmt.Errorf("read the memory of Redfish system %s: %w", sys.ID, err)
	}
	for _, m := range mods {
		if present(m.Status) && m.CapacityMiB != nil && *m.CapacityMiB > 0 {
			res.MemoryMB += int64(*m.CapacityMiB)
		}
	}
	if g := sys.MemorySummary.TotalSystemMemoryGiB; res.MemoryMB == 0 && g != nil && *g > 0 && *g < math.MaxInt64/1024 {
		res.MemoryMB = int64(math.Round(*g * 1024))
	}
	return nil
}

// smallestRootDisk is the smallest size of at least minRootDisk, or 0.
func smallestRootDisk(sizes []int64) int64 {
	var best int64
	for _, s := range sizes {
		if s >= minRootDisk && (best == 0 || s < best) {
			best = s
		}
	}
	return best
}

// inspectLocalGB is Ironic's local_gb: the smallest disk of 4 GiB or more among the
// SimpleStorage devices and among the Storage volumes (else drives), in GiB less one.
func inspectLocalGB(sys *schemas.ComputerSystem) (int64, error) {
	simple, err := sys.SimpleStorage()
	if err != nil {
		return 0, fmt.Errorf("read the simple storage of Redfish system %s: %w", sys.ID, err)
	}
	var simpleSizes []int64
	for _, s := range simple {
		for _, dev := range s.Devices {
			if present(dev.Status) && dev.CapacityBytes != nil && *dev.CapacityBytes <= math.MaxInt64 {
				simpleSizes = append(simpleSizes, int64(*dev.CapacityBytes))
			}
		}
	}
	storage, err := sys.Storage()
	if err != nil {
		return 0, fmt.Errorf("read the storage of Redfish system %s: %w", sys.ID, err)
	}
	var volumeSizes, driveSizes []int64
	for _, st := range storage {
		vols, err := st.Volumes()
		if err != nil {
			return 0, fmt.Errorf("read the volumes of storage %s: %w", st.ID, err)
		}
		for _, v := range vols {
			if present(v.Status) && v.CapacityBytes != nil {
				volumeSizes = append(volumeSizes, int64(*v.CapacityBytes))
			}
		}
		drives, err := st.Drives()
		if err != nil {
			return 0, fmt.Errorf("read the drives of storage %s: %w", st.ID, err)
		}
		for _, dr := range drives {
			if present(dr.Status) && dr.CapacityBytes != nil {
				driveSizes = append(driveSizes, int64(*dr.CapacityBytes))
			}
		}
	}
	simpleSize := smallestRootDisk(simpleSizes)
	storageSize := smallestRootDisk(volumeSizes)
	if storageSize == 0 {
		storageSize = smallestRootDisk(driveSizes)
	}
	size := max(simpleSize, storageSize)
	if simpleSize > 0 && storageSize > 0 {
		size = min(simpleSize, storageSize)
	}
	return max(0, size/(1<<30)-1), nil
}

// inspectMACs lists the MACs of the enabled Ethernet interfaces, each once.
func inspectMACs(sys *schemas.ComputerSystem) ([]string, error) {
	nics, err := sys.EthernetInterfaces()
	if err != nil {
		return nil, fmt.Errorf("read the Ethernet interfaces of Redfish system %s: %w", sys.ID, err)
	}
	var macs []string
	seen := map[string]bool{}
	for _, n := range nics {
		if n.Status.State != schemas.EnabledState {
			continue // Ironic creates ports for enabled NICs only
		}
		raw := n.MACAddress
		if raw == "" {
			raw = n.PermanentMACAddress
		}
		hw, err := net.ParseMAC(raw)
		if err != nil || len(hw) != 6 {
			continue
		}
		if mac := hw.String(); !seen[mac] {
			seen[mac] = true
			macs = append(macs, mac)
		}
	}
	slices.Sort(macs) // the collection's members are read concurrently
	return macs, nil
}
