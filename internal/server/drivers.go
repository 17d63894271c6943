package server

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/driver/direct"
	"github.com/ironwork/ironwork/internal/driver/fake"
	"github.com/ironwork/ironwork/internal/driver/inspect"
	"github.com/ironwork/ironwork/internal/driver/ipmi"
	"github.com/ironwork/ironwork/internal/driver/network"
	"github.com/ironwork/ironwork/internal/driver/ramdisk"
	"github.com/ironwork/ironwork/internal/driver/redfish"
	"github.com/ironwork/ironwork/internal/image"
	"github.com/ironwork/ironwork/internal/netns"
)

// registerDrivers adds every interface implementation of this build to registry, except the
// network boot interfaces, which registerBoot adds with the boot services they need.
// local serves images from the conductor for image_download_source local (nil without boot
// services).
func registerDrivers(cfg Config, registry conductor.Registry, sessions *ipmi.Sessions, local direct.LocalImages, log *slog.Logger) {
	fake.Register(registry)
	network.Register(registry)
	rf, ipmitool := redfish.Interface{DefaultBootMode: cfg.DefaultBootMode}, ipmi.Interface{Sessions: sessions}
	registry.Add(ironwork.PowerInterface, "redfish", rf)
	registry.Add(ironwork.ManagementInterface, "redfish", rf)
	registry.Add(ironwork.InspectInterface, "redfish", rf)
	registry.Add(ironwork.VendorInterface, "redfish", redfish.Vendor{Interface: rf})
	registry.Add(ironwork.VendorInterface, "ipmitool", ipmi.Vendor{Interface: ipmitool})
	registry.Add(ironwork.BIOSInterface, "redfish", redfish.BIOS{Interface: rf})
	registry.Add(ironwork.FirmwareInterface, "redfish", redfish.Firmware{Interface: rf})
	registry.Add(ironwork.RAIDInterface, "redfish", redfish.RAID{Interface: rf})
	registry.Add(ironwork.PowerInterface, "ipmitool", ipmitool)
	registry.Add(ironwork.ManagementInterface, "ipmitool", ipmitool)
	// Ironic's name for its IPMI serial console offered as a raw TCP URL; ours is the native
	// Serial-over-LAN client of the ipmitool interfaces, served by the conductor.
	registry.Add(ironwork.ConsoleInterface, "ipmitool-socat", ipmitool)
	dcfg := direct.Config{SoftPowerOffTimeout: cfg.AgentPowerOffTimeout.Duration, DefaultBootMode: cfg.DefaultBootMode,
		CommandTimeout: cfg.AgentCommandTimeout.Duration, MaxCommandAttempts: cfg.AgentMaxCommandAttempts,
		ImageDownloadSource: cfg.ImageDownloadSource, LocalImages: local, FileDirs: fileDirs(cfg),
		OCI: &image.OCIResolver{PlainHTTP: cfg.OCIPlainHTTPRegistries}}
	dcfg.AgentRoots, dcfg.AgentInsecure, _ = direct.ParseVerifyCA(cfg.AgentVerifyCA) // checked by Validate
	if cfg.ProvisioningNetns != "" {
		// Agents' callback URLs are addresses on the provisioning network, which exists
		// only inside its namespace: dial them from there.
		dcfg.Dial = netns.Dialer(cfg.ProvisioningNetns)
	}
	deploy := direct.New(dcfg, log)
	registry.Add(ironwork.DeployInterface, "direct", deploy)
	registry.Add(ironwork.RAIDInterface, "agent", direct.NewRAID(deploy))
	registry.Add(ironwork.DeployInterface, ramdisk.Name, ramdisk.Interface{FileDirs: fileDirs(cfg)})
	registry.Add(ironwork.InspectInterface, "agent", inspect.Agent{})
	registry.Add(ironwork.RescueInterface, "agent", direct.NewRescue(dcfg, log))
}

// ErrCatalogueDrift is returned when the driver catalogue and the registered implementations
// disagree: the catalogue names an implementation nobody registered, or a registered one is
// missing from the catalogue.
var ErrCatalogueDrift = errors.New("the driver catalogue and the registered interface implementations disagree")

// checkCatalogue compares the catalogue (ironwork.HardwareTypes) with registry in both
// directions and names every difference.
func checkCatalogue(registry conductor.Registry) error {
	listed := map[ironwork.InterfaceKind][]string{}
	var problems []string
	for _, hw := range ironwork.HardwareTypes() {
		for _, kind := range ironwork.InterfaceKinds {
			names := hw.Supported[kind]
			if len(names) == 0 {
				problems = append(problems, fmt.Sprintf("hardware type %s supports no %s interface", hw.Name, kind))
			}
			for _, name := range names {
				if _, ok := registry[kind][name]; !ok {
					problems = append(problems, fmt.Sprintf("hardware type %s lists %s interface %q, which is not registered", hw.Name, kind, name))
				}
				if !slices.Contains(listed[kind], name) {
					listed[kind] = append(listed[kind], name)
				}
			}
		}
	}
	for kind, impls := range registry {
		for name := range impls {
			if !slices.Contains(listed[kind], name) {
				problems = append(problems, fmt.Sprintf("%s interface %q is registered but no hardware type lists it", kind, name))
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	return fmt.Errorf("%w: %s", ErrCatalogueDrift, strings.Join(problems, "; "))
}
