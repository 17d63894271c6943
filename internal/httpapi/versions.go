package httpapi

// Support says how much of a microversion this build serves.
type Support int

const (
	// Served: everything the version adds works here.
	Served Support = iota
	// Elsewhere: another line of work (named in Feature.By) brings it; until it is merged this
	// build does not serve it, and the advertised maximum stays below it.
	Elsewhere
	// Missing: nobody serves it yet.
	Missing
)

func (s Support) String() string {
	switch s {
	case Served:
		return "served"
	case Elsewhere:
		return "elsewhere"
	}
	return "missing"
}

// Probe is a request that answers something other than 404 from its version on, when the
// version is served: "{node}" in Path is replaced by a node's UUID.
type Probe struct{ Method, Path string }

// Feature is one row of the version table: what Ironic's microversion 1.Minor adds.
type Feature struct {
	Minor   int
	Adds    string
	Support Support
	By      string // who brings an Elsewhere row (a branch or an issue)
	Probes  []Probe
}

// Versions is the one source of truth of the microversions: one row per version from 1.1 to
// Ironic's latest, in order. The advertised maximum (MaxMinor) is derived from it.
func Versions() []Feature {
	p := func(method, path string) []Probe { return []Probe{{method, path}} }
	return []Feature{
		{Minor: 1, Adds: "the Kilo API: nodes, ports, chassis, drivers, maintenance, states, vendor passthru",
			Probes: p("GET", "/v1/nodes/{node}/states")},
		{Minor: 2, Adds: "available state (NOSTATE renamed)"},
		{Minor: 3, Adds: "node driver_internal_info"},
		{Minor: 4, Adds: "manageable state; manage and provide verbs"},
		{Minor: 5, Adds: "node names"},
		{Minor: 6, Adds: "inspection states; inspect verb"},
		{Minor: 7, Adds: "node clean_step"},
		{Minor: 8, Adds: "?fields= on GETs"},
		{Minor: 9, Adds: "provision_state filter"},
		{Minor: 10, Adds: "node names with RFC 3986 unreserved characters"},
		{Minor: 11, Adds: "new nodes start in enroll"},
		{Minor: 12, Adds: "RAID: target_raid_config, raid_config, logical_disk_properties",
			Probes: p("PUT", "/v1/nodes/{node}/states/raid")},
		{Minor: 13, Adds: "abort verb in cleanwait"},
		{Minor: 14, Adds: "states and driver properties links"},
		{Minor: 15, Adds: "manual cleaning (clean verb with clean_steps)"},
		{Minor: 16, Adds: "driver filter"},
		{Minor: 17, Adds: "adopt verb"},
		{Minor: 18, Adds: "port internal_info"},
		{Minor: 19, Adds: "port local_link_connection and pxe_enabled"},
		{Minor: 20, Adds: "node network_interface"},
		{Minor: 21, Adds: "node resource_class"},
		{Minor: 22, Adds: "lookup and heartbeat for ramdisks", Probes: p("POST", "/v1/heartbeat/{node}")},
		{Minor: 23, Adds: "portgroups", Probes: p("GET", "/v1/portgroups")},
		{Minor: 24, Adds: "portgroup sub-resources", Probes: p("GET", "/v1/nodes/{node}/portgroups")},
		{Minor: 25, Adds: "unsetting a node's chassis_uuid"},
		{Minor: 26, Adds: "portgroup mode and properties"},
		{Minor: 27, Adds: "soft power off and soft reboot"},
		{Minor: 28, Adds: "VIF sub-resource", Probes: p("GET", "/v1/nodes/{node}/vifs")},
		{Minor: 29, Adds: "inject NMI"},
		{Minor: 30, Adds: "dynamic drivers (type filter, driver interfaces)"},
		{Minor: 31, Adds: "node interface fields"},
		{Minor: 32, Adds: "volume connectors and targets", Probes: []Probe{{"GET", "/v1/volume"}, {"GET", "/v1/volume/connectors"},
			{"GET", "/v1/volume/targets"}, {"GET", "/v1/nodes/{node}/volume/connectors"}, {"GET", "/v1/nodes/{node}/volume/targets"}}},
		{Minor: 33, Adds: "node storage_interface"},
		{Minor: 34, Adds: "port physical_network"},
		{Minor: 35, Adds: "config drive on rebuild"},
		{Minor: 36, Adds: "agent_version in heartbeats"},
		{Minor: 37, Adds: "node traits", Probes: p("GET", "/v1/nodes/{node}/traits")},
		{Minor: 38, Adds: "rescue and unrescue"},
		{Minor: 39, Adds: "inspect wait state"},
		{Minor: 40, Adds: "BIOS settings and bios_interface",
			Probes: p("GET", "/v1/nodes/{node}/bios")},
		{Minor: 41, Adds: "abort of inspection (inspect wait)"},
		{Minor: 42, Adds: "node fault"},
		{Minor: 43, Adds: "?detail= on lists"},
		{Minor: 44, Adds: "node deploy_step"},
		{Minor: 45, Adds: "reset_interfaces on PATCH"},
		{Minor: 46, Adds: "node conductor_group"},
		{Minor: 47, Adds: "node automated_clean"},
		{Minor: 48, Adds: "node protected"},
		{Minor: 49, Adds: "conductors and node conductor", Probes: p("GET", "/v1/conductors")},
		{Minor: 50, Adds: "node owner"},
		{Minor: 51, Adds: "node description"},
		{Minor: 52, Adds: "allocations", Probes: p("GET", "/v1/allocations")},
		{Minor: 53, Adds: "smart NIC ports (is_smartnic)"},
		{Minor: 54, Adds: "external events", Probes: p("POST", "/v1/events")},
		{Minor: 55, Adds: "deploy templates", Probes: p("GET", "/v1/deploy_templates")},
		{Minor: 56, Adds: "config drive as a dict"},
		{Minor: 57, Adds: "allocation PATCH"},
		{Minor: 58, Adds: "allocation backfill"},
		{Minor: 59, Adds: "config drive vendor_data"},
		{Minor: 60, Adds: "allocation owner"},
		{Minor: 61, Adds: "node retired and retired_reason"},
		{Minor: 62, Adds: "agent token"},
		{Minor: 63, Adds: "indicators",
			Probes: p("GET", "/v1/nodes/{node}/management/indicators")},
		{Minor: 64, Adds: "network_type in local_link_connection"},
		{Minor: 65, Adds: "node lessee"},
		{Minor: 66, Adds: "node network_data"},
		{Minor: 67, Adds: "VIF attach to a given port"},
		{Minor: 68, Adds: "agent_verify_ca in heartbeats"},
		{Minor: 69, Adds: "deploy_steps on deploy and rebuild"},
		{Minor: 70, Adds: "disable_ramdisk for manual cleaning"},
		{Minor: 71, Adds: "RBAC scopes (a signifier)"},
		{Minor: 72, Adds: "agent status in heartbeats"},
		{Minor: 73, Adds: "deploy and undeploy verbs"},
		{Minor: 74, Adds: "BIOS registry fields"},
		{Minor: 75, Adds: "node boot_mode and secure_boot"},
		{Minor: 76, Adds: "changing boot mode and secure boot"},
		{Minor: 77, Adds: "?fields= on drivers"},
		{Minor: 78, Adds: "node history", Probes: p("GET", "/v1/nodes/{node}/history")},
		{Minor: 79, Adds: "allocation name matching a node first"},
		{Minor: 80, Adds: "project-scoped node create and delete (a signifier)"},
		{Minor: 81, Adds: "node inventory"},
		{Minor: 82, Adds: "node shard and /v1/shards", Probes: p("GET", "/v1/shards")},
		{Minor: 83, Adds: "child nodes: parent_node, /children, include_children", Probes: p("GET", "/v1/nodes/{node}/children")},
		{Minor: 84, Adds: "continue_inspection for ramdisks"},
		{Minor: 85, Adds: "unhold verb"},
		{Minor: 86, Adds: "firmware interface and components",
			Probes: p("GET", "/v1/nodes/{node}/firmware")},
		{Minor: 87, Adds: "service verb and service_step"},
		{Minor: 88, Adds: "port name"},
		{Minor: 89, Adds: "virtual media attach and detach"},
		{Minor: 90, Adds: "OVN VTEP keys in local_link_connection"},
		{Minor: 91, Adds: "no special treatment of .json in paths"},
		{Minor: 92, Adds: "runbooks", Probes: p("GET", "/v1/runbooks")},
		{Minor: 93, Adds: "virtual media GET", Probes: p("GET", "/v1/nodes/{node}/vmedia")},
		{Minor: 94, Adds: "port create with node_ident"},
		{Minor: 95, Adds: "node disable_power_off"},
		{Minor: 96, Adds: "inspection rules", Probes: p("GET", "/v1/inspection_rules")},
		{Minor: 97, Adds: "port description"},
		{Minor: 98, Adds: "~ and / in patched attribute keys"},
		{Minor: 99, Adds: "conductor_group filter on ports and portgroups", Probes: []Probe{{"GET", "/v1/ports?conductor_group=g"}, {"GET", "/v1/portgroups?conductor_group=g"}}},
		{Minor: 100, Adds: "port vendor"},
		{Minor: 101, Adds: "port category"},
		{Minor: 102, Adds: "portgroup physical_network"},
		{Minor: 103, Adds: "portgroup category"},
		{Minor: 104, Adds: "node instance_name"},
		{Minor: 105, Adds: "OVN VTEP keys refused again"},
		{Minor: 106, Adds: "shard filter on portgroups", Probes: p("GET", "/v1/portgroups?shard=s")},
		{Minor: 107, Adds: "X-OpenStack-Request-Id on every answer"},
		{Minor: 108, Adds: "disable_ramdisk for servicing"},
		{Minor: 109, Adds: "node health"},
		{Minor: 110, Adds: "abort in deploy wait"},
		{Minor: 111, Adds: "port available_for_dynamic_portgroup, portgroup dynamic_portgroup"},
		{Minor: 112, Adds: "runbook traits and description", Probes: p("GET", "/v1/runbooks/{runbook}/traits")},
		{Minor: 113, Adds: "project in node history"},
		{Minor: 114, Adds: "vendor, model, serial_number of firmware components"},
		{Minor: 115, Adds: "state, target_provision_state, duration_seconds in node history"},
	}
}

// servedMax is the highest version such that every version up to it is Served; with
// pending, Elsewhere rows count as served too (what the maximum becomes once they are merged).
func servedMax(rows []Feature, pending bool) int {
	maxMinor := 0
	for _, f := range rows {
		if f.Minor != maxMinor+1 {
			break
		}
		if f.Support == Missing || (f.Support == Elsewhere && !pending) {
			break
		}
		maxMinor = f.Minor
	}
	return maxMinor
}

// ServedMax is the highest microversion at or below which every version is served by this
// build alone.
func ServedMax() int { return servedMax(Versions(), false) }

// PendingMax is the maximum once every Elsewhere row is merged: what MaxMinor advertises.
func PendingMax() int { return servedMax(Versions(), true) }
