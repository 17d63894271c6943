package lab_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/noauth"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/drivers"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/utils"

	"github.com/ironwork/ironwork/internal/lab"
	"github.com/ironwork/ironwork/internal/lab/testimage"
)

// metal3Flow replays, with gophercloud (the client Metal3 uses), the requests Metal3's
// baremetal-operator makes for a host whose BMC address is redfish-virtualmedia://: register
// (driver redfish, boot_interface redfish-virtual-media, inspect_interface agent, a port for
// the boot MAC, the preprovisioning network_data), manage, set the deploy kernel and ramdisk,
// inspect in band and read the inventory, provide, set instance_info (image with
// image_os_hash_*, boot mode capability) and validate, deploy with a config drive given as
// JSON, see the instance boot, power off and on, deprovision, delete. The lab's own node
// for the machine is deleted first. It returns the phases' durations.
func metal3Flow(ctx context.Context, t testing.TB, st *lab.State, name string) ([]lab.Phase, error) {
	n, _ := st.Node(name)
	var phases []lab.Phase
	mark := time.Now()
	phase := func(label string) {
		phases = append(phases, lab.Phase{Name: label, Duration: time.Since(mark)})
		mark = time.Now()
	}
	c, err := noauth.NewBareMetalNoAuth(noauth.EndpointOpts{IronicEndpoint: st.APIURL + "/v1/"})
	if err != nil {
		return nil, err
	}
	// Metal3 needs 1.89 and picks the highest of 1.110, 1.109, 1.95, 1.93, 1.89 the server has.
	mvs, err := utils.GetSupportedMicroversions(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("microversions: %w", err)
	}
	if mvs.MaxMajor != 1 || mvs.MaxMinor < 89 {
		return nil, fmt.Errorf("the server's newest microversion is %d.%d; Metal3 needs 1.89", mvs.MaxMajor, mvs.MaxMinor)
	}
	for _, v := range []int{110, 109, 95, 93, 89} {
		if mvs.MaxMinor >= v {
			c.Microversion = fmt.Sprintf("1.%d", v)
			break
		}
	}
	t.Logf("metal3: microversion %s (server max 1.%d)", c.Microversion, mvs.MaxMinor)

	// The lab enrolled the machine; Metal3 registers it itself.
	old, err := nodes.Get(ctx, c, n.UUID).Extract()
	if err != nil {
		return nil, fmt.Errorf("get the lab's node: %w", err)
	}
	kernel, _ := old.DriverInfo["deploy_kernel"].(string)
	ramdisk, _ := old.DriverInfo["deploy_ramdisk"].(string)
	networkData := old.NetworkData
	if err := nodes.Delete(ctx, c, n.UUID).ExtractErr(); err != nil {
		return nil, fmt.Errorf("delete the lab's node: %w", err)
	}

	// Register: findExistingHost (by name, then by the boot MAC's port), create, port.
	hostName := "metal3~" + name
	if _, err := nodes.Get(ctx, c, hostName).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		return nil, fmt.Errorf("find host %s by name: want 404, got %v", hostName, err)
	}
	pages, err := ports.List(c, ports.ListOpts{Address: n.MAC, Fields: []string{"node_uuid"}}).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("find host by MAC: %w", err)
	}
	if found, _ := ports.ExtractPorts(pages); len(found) != 0 {
		return nil, fmt.Errorf("find host by MAC: %d ports left after the node's deletion", len(found))
	}
	createOpts := nodes.CreateOpts{
		Driver:           "redfish",
		BootInterface:    "redfish-virtual-media",
		Name:             hostName,
		InspectInterface: "agent",
		DisablePowerOff:  new(bool),
		DriverInfo: map[string]any{
			"redfish_system_id": "/redfish/v1/Systems/" + name,
			"redfish_username":  lab.BMCUser,
			"redfish_password":  lab.BMCPassword,
			"redfish_address":   n.BMCAddress,
		},
		Properties: map[string]any{"capabilities": "boot_mode:" + n.Firmware, "cpu_arch": "x86_64"},
	}
	// Metal3 also asks for raid_interface redfish; the create is refused unless the
	// redfish hardware type offers it.
	d, err := drivers.GetDriverDetails(ctx, c, "redfish").Extract()
	if err != nil {
		return nil, fmt.Errorf("driver redfish: %w", err)
	}
	if contains(d.EnabledRaidInterfaces, "redfish") {
		createOpts.RAIDInterface = "redfish"
	} else {
		t.Logf("metal3: raid_interface redfish left out of the create: the redfish hardware type offers %v", d.EnabledRaidInterfaces)
	}
	node, err := nodes.Create(ctx, c, createOpts).Extract()
	if err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	pxe := true
	if _, err := ports.Create(ctx, c, ports.CreateOpts{NodeUUID: node.UUID, Address: n.MAC, PXEEnabled: &pxe}).Extract(); err != nil {
		return nil, fmt.Errorf("register the boot MAC's port: %w", err)
	}
	if _, err := nodes.Update(ctx, c, node.UUID, nodes.UpdateOpts{
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/network_data", Value: networkData}}).Extract(); err != nil {
		return nil, fmt.Errorf("set the preprovisioning network_data: %w", err)
	}
	if err := provision(ctx, c, node.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage}, "manageable", time.Minute); err != nil {
		return phases, fmt.Errorf("manage: %w", err)
	}
	// configureNode: the deploy image, automated cleaning, the boot mode capability.
	if _, err := nodes.Update(ctx, c, node.UUID, nodes.UpdateOpts{
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/driver_info/deploy_kernel", Value: kernel},
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/driver_info/deploy_ramdisk", Value: ramdisk},
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/automated_clean", Value: true},
	}).Extract(); err != nil {
		return phases, fmt.Errorf("configure the node: %w", err)
	}
	phase("register, manage, configure")

	// InspectHardware: inspect, then the inventory.
	if err := provision(ctx, c, node.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetInspect}, "manageable", 8*time.Minute); err != nil {
		return phases, fmt.Errorf("inspect: %w", err)
	}
	inv, err := nodes.GetInventory(ctx, c, node.UUID).Extract()
	if err != nil {
		return phases, fmt.Errorf("inventory: %w", err)
	}
	macs := []string{}
	for _, iface := range inv.Inventory.Interfaces {
		macs = append(macs, iface.MACAddress)
	}
	if !contains(macs, n.MAC) {
		return phases, fmt.Errorf("the inventory's interfaces %v lack the boot MAC %s", macs, n.MAC)
	}
	t.Logf("metal3: inventory: %d CPUs, %d MiB, %d disks, NICs %v", inv.Inventory.CPU.Count, inv.Inventory.Memory.PhysicalMb, len(inv.Inventory.Disks), macs)
	phase("inspect (agent, through the virtual CD)")

	if err := provision(ctx, c, node.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetProvide}, "available", 8*time.Minute); err != nil {
		return phases, fmt.Errorf("provide: %w", err)
	}
	phase("provide (cleaning)")

	// Provision: instance_uuid, instance_info, force_persistent_boot_device, validate, deploy
	// with a config drive built by the server from JSON.
	instanceUUID := newUUID()
	node, err = nodes.Update(ctx, c, node.UUID, nodes.UpdateOpts{
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_uuid", Value: instanceUUID},
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info/capabilities", Value: map[string]string{"boot_mode": n.Firmware}},
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info/image_source", Value: st.Image},
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info/image_disk_format", Value: "raw"},
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info/image_os_hash_algo", Value: "sha256"},
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info/image_os_hash_value", Value: st.ImageSH},
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/driver_info/force_persistent_boot_device", Value: "Default"},
	}).Extract()
	if err != nil {
		return phases, fmt.Errorf("set instance_info: %w", err)
	}
	v, err := nodes.Validate(ctx, c, node.UUID).Extract()
	if err != nil {
		return phases, fmt.Errorf("validate: %w", err)
	}
	for what, r := range map[string]nodes.DriverValidation{"boot": v.Boot, "deploy": v.Deploy, "power": v.Power, "management": v.Management} {
		if !r.Result {
			return phases, fmt.Errorf("validate: %s: %s", what, r.Reason)
		}
	}
	userData := "#cloud-config\nhostname: " + name + "\n"
	cd := nodes.ConfigDrive{
		MetaData: map[string]any{"uuid": instanceUUID, "metal3-namespace": "metal3", "metal3-name": name,
			"local-hostname": name, "local_hostname": name, "name": name},
		UserData:    userData,
		NetworkData: networkData,
	}
	serialFrom := fileSizeOf(n.Serial)
	if err := provision(ctx, c, node.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetActive, ConfigDrive: cd}, "active", 8*time.Minute); err != nil {
		return phases, fmt.Errorf("deploy: %w", err)
	}
	phase("deploy (config drive from JSON)")
	line, err := lab.WaitSerial(ctx, n.Serial, serialFrom, testimage.ConfigDriveMarker, 4*time.Minute)
	if err != nil {
		return phases, fmt.Errorf("instance boot: %w", err)
	}
	t.Logf("metal3: %s", strings.TrimSpace(line))
	for _, want := range []string{"uuid=" + instanceUUID, fmt.Sprintf("user_data_bytes=%d", len(userData)), "network_data=yes"} {
		if !strings.Contains(line, want) {
			return phases, fmt.Errorf("the instance's config drive line %q lacks %s", line, want)
		}
	}
	phase("instance boot (config drive read)")

	// PowerOff, PowerOn (the instance's boot after it is not waited for: the first boot
	// above showed the disk boot, and CI time is short).
	for _, target := range []nodes.TargetPowerState{nodes.PowerOff, nodes.PowerOn} {
		if err := nodes.ChangePowerState(ctx, c, node.UUID, nodes.PowerStateOpts{Target: target}).ExtractErr(); err != nil {
			return phases, fmt.Errorf("%s: %w", target, err)
		}
		if err := waitPower(ctx, c, node.UUID, string(target), 2*time.Minute); err != nil {
			return phases, err
		}
	}
	phase("power off, power on")

	// Deprovision, then Delete (after clearing a stale instance_uuid, as Metal3 does).
	if err := provision(ctx, c, node.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetDeleted}, "available", 8*time.Minute); err != nil {
		return phases, fmt.Errorf("deprovision: %w", err)
	}
	phase("deprovision (cleaning)")
	got, err := nodes.Get(ctx, c, node.UUID).Extract()
	if err != nil {
		return phases, err
	}
	if got.InstanceUUID != "" {
		if _, err := nodes.Update(ctx, c, node.UUID, nodes.UpdateOpts{
			nodes.UpdateOperation{Op: nodes.RemoveOp, Path: "/instance_uuid"}}).Extract(); err != nil {
			return phases, fmt.Errorf("clear instance_uuid: %w", err)
		}
	}
	if err := nodes.Delete(ctx, c, node.UUID).ExtractErr(); err != nil {
		return phases, fmt.Errorf("delete: %w", err)
	}
	if _, err := nodes.Get(ctx, c, node.UUID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		return phases, fmt.Errorf("the deleted node: want 404, got %v", err)
	}
	phase("delete")
	return phases, nil
}

// provision asks for a provision state change (retrying while the node is locked, as Metal3
// does on 409) and waits for want; a failed state ends the wait with last_error.
func provision(ctx context.Context, c *gophercloud.ServiceClient, uuid string, opts nodes.ProvisionStateOpts, want string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		err := nodes.ChangeProvisionState(ctx, c, uuid, opts).ExtractErr()
		if err == nil {
			break
		}
		if !gophercloud.ResponseCodeIs(err, http.StatusConflict) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(2 * time.Second)
	}
	for {
		n, err := nodes.Get(ctx, c, uuid).Extract()
		if err != nil {
			return err
		}
		if n.ProvisionState == want && n.TargetProvisionState == "" {
			return nil
		}
		if strings.HasSuffix(n.ProvisionState, "failed") || (n.ProvisionState == "enroll" && want != "enroll") {
			return fmt.Errorf("%s: %s", n.ProvisionState, n.LastError)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still %s (target %s) after %s; want %s", n.ProvisionState, n.TargetProvisionState, within, want)
		}
		time.Sleep(2 * time.Second)
	}
}

func waitPower(ctx context.Context, c *gophercloud.ServiceClient, uuid, want string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		n, err := nodes.Get(ctx, c, uuid).Extract()
		if err != nil {
			return err
		}
		if n.PowerState == want && n.TargetPowerState == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("power state %s after %s; want %s (last_error %q)", n.PowerState, within, want, n.LastError)
		}
		time.Sleep(time.Second)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func newUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
