package main

// Fixed identities, so that both servers hold records with the same UUIDs and names and every
// path is the same on both sides.
const (
	chassis1 = "c0a1c0a1-0000-4000-8000-000000000001"
	node1    = "1be26c0b-03f2-4d2e-ae87-c02d7f33c001"
	node2    = "1be26c0b-03f2-4d2e-ae87-c02d7f33c002"
	node3    = "1be26c0b-03f2-4d2e-ae87-c02d7f33c003"
	node4    = "1be26c0b-03f2-4d2e-ae87-c02d7f33c004"
	node5    = "1be26c0b-03f2-4d2e-ae87-c02d7f33c005"
	instance = "15a7a9ce-0000-4000-8000-000000000001"
	node6    = "1be26c0b-03f2-4d2e-ae87-c02d7f33c006"
	node7    = "1be26c0b-03f2-4d2e-ae87-c02d7f33c007"
	alloc1   = "a110ca7e-0000-4000-8000-000000000001"
	alloc2   = "a110ca7e-0000-4000-8000-000000000002"
	tmpl1    = "7e3b1a7e-0000-4000-8000-000000000001"
	vconn1   = "c0cc0000-0000-4000-8000-000000000001"
	vtgt1    = "7a760000-0000-4000-8000-000000000001"
	vif1     = "f1f00000-0000-4000-8000-000000000001"
	nodeGone = "1be26c0b-03f2-4d2e-ae87-c02d7f33cfff"
	port1    = "9a7e0000-0000-4000-8000-000000000001"
	port2    = "9a7e0000-0000-4000-8000-000000000002"
	port3    = "9a7e0000-0000-4000-8000-000000000003"
	port4    = "9a7e0000-0000-4000-8000-000000000004"
	pg1      = "96000000-0000-4000-8000-000000000001"
	name1    = "compat-node-1"
	name2    = "compat-node-2"
	mac1     = "52:54:00:12:34:0a"
	mac2     = "52:54:00:12:34:02"
	mac3     = "52:54:00:12:34:03"
	pgMAC    = "52:54:00:12:34:aa"
)

type obj = map[string]any

func patch(ops ...obj) []obj { return ops }

func op(o, path string, value ...any) obj {
	m := obj{"op": o, "path": path}
	if len(value) > 0 {
		m["value"] = value[0]
	}
	return m
}

// nodeValues are node fields whose values both sides must agree on after a create or a PATCH.
var nodeValues = []string{"/name", "/driver", "/provision_state", "/power_state", "/maintenance",
	"/properties", "/extra", "/driver_info", "/resource_class", "/chassis_uuid"}

// ifaceValues are the hardware interfaces a new node gets by default.
var ifaceValues = []string{"/bios_interface", "/boot_interface", "/console_interface", "/deploy_interface",
	"/inspect_interface", "/management_interface", "/network_interface", "/power_interface",
	"/raid_interface", "/rescue_interface", "/storage_interface", "/vendor_interface"}

// steps is the recorded sequence. Later steps depend on earlier ones (records they create).
func steps() []step {
	var s []step
	add := func(st ...step) { s = append(s, st...) }

	// Root documents and microversion negotiation.
	add(
		step{Name: "root", Method: "GET", Path: "/", Version: none},
		step{Name: "v1 root", Method: "GET", Path: "/v1"},
		step{Name: "v1 root, trailing slash", Method: "GET", Path: "/v1/"},
		step{Name: "v1 root without version header", Method: "GET", Path: "/v1", Version: none},
		step{Name: "v1 root at 1.1", Method: "GET", Path: "/v1", Version: "1.1"},
		step{Name: "out-of-range version", Method: "GET", Path: "/v1/nodes", Version: "1.99"},
		step{Name: "major version 2", Method: "GET", Path: "/v1/nodes", Version: "2.0"},
		step{Name: "garbage version", Method: "GET", Path: "/v1/nodes", Version: "one.two"},
		step{Name: "latest version", Method: "GET", Path: "/v1/nodes", Version: "latest"},
		step{Name: "unknown top-level resource", Method: "GET", Path: "/v1/bogus"},
	)

	// Drivers and conductors.
	add(
		step{Name: "driver list", Method: "GET", Path: "/v1/drivers"},
		step{Name: "driver list, detail", Method: "GET", Path: "/v1/drivers?detail=true"},
		step{Name: "driver list, type=dynamic", Method: "GET", Path: "/v1/drivers?type=dynamic"},
		step{Name: "driver list, type=classic", Method: "GET", Path: "/v1/drivers?type=classic"},
		step{Name: "driver list, bad type", Method: "GET", Path: "/v1/drivers?type=bogus"},
		step{Name: "driver list at 1.1", Method: "GET", Path: "/v1/drivers", Version: "1.1"},
		step{Name: "driver show", Method: "GET", Path: "/v1/drivers/fake-hardware",
			Values: []string{"/name", "/type", "/default_power_interface", "/default_deploy_interface"}},
		step{Name: "driver show ipmi", Method: "GET", Path: "/v1/drivers/ipmi",
			Values: []string{"/name", "/default_management_interface", "/default_power_interface"}},
		step{Name: "driver show at 1.31", Method: "GET", Path: "/v1/drivers/fake-hardware", Version: "1.31"},
		step{Name: "driver properties", Method: "GET", Path: "/v1/drivers/fake-hardware/properties"},
		step{Name: "unknown driver", Method: "GET", Path: "/v1/drivers/no-such-driver"},
		step{Name: "conductor list", Method: "GET", Path: "/v1/conductors",
			Save: map[string]string{"conductor": "/conductors/0/hostname"}},
		step{Name: "conductor list, detail", Method: "GET", Path: "/v1/conductors?detail=true"},
		step{Name: "conductor list at 1.49", Method: "GET", Path: "/v1/conductors", Version: "1.49"},
		step{Name: "conductor list at 1.48 (too old)", Method: "GET", Path: "/v1/conductors", Version: "1.48"},
		step{Name: "conductor show", Method: "GET", Path: "/v1/conductors/{conductor}",
			Values: []string{"/alive", "/conductor_group"}},
		step{Name: "unknown conductor", Method: "GET", Path: "/v1/conductors/no-such-host"},
	)

	// Chassis.
	add(
		step{Name: "chassis create", Method: "POST", Path: "/v1/chassis",
			Body:   obj{"uuid": chassis1, "description": "compat chassis", "extra": obj{"rack": "r1"}},
			Values: []string{"/uuid", "/description", "/extra"}},
		step{Name: "chassis create, duplicate uuid", Method: "POST", Path: "/v1/chassis", Body: obj{"uuid": chassis1}},
		step{Name: "chassis create, unknown field", Method: "POST", Path: "/v1/chassis", Body: obj{"bogus": 1}},
		step{Name: "chassis list", Method: "GET", Path: "/v1/chassis"},
		step{Name: "chassis list, detail", Method: "GET", Path: "/v1/chassis/detail"},
		step{Name: "chassis list, fields", Method: "GET", Path: "/v1/chassis?fields=uuid,description"},
		step{Name: "chassis show", Method: "GET", Path: "/v1/chassis/" + chassis1},
		step{Name: "chassis patch", Method: "PATCH", Path: "/v1/chassis/" + chassis1,
			Body:   patch(op("replace", "/description", "patched"), op("add", "/extra/row", "7")),
			Values: []string{"/description", "/extra"}},
		step{Name: "chassis show, unknown", Method: "GET", Path: "/v1/chassis/" + nodeGone},
	)

	// Node create, including refused bodies.
	add(
		step{Name: "node create (full)", Method: "POST", Path: "/v1/nodes",
			Body: obj{"uuid": node1, "name": name1, "driver": "fake-hardware", "chassis_uuid": chassis1,
				"resource_class": "compat-rc", "extra": obj{"team": "a"},
				"properties":  obj{"cpus": 4, "memory_mb": 8192, "local_gb": 100, "cpu_arch": "x86_64"},
				"driver_info": obj{"ipmi_address": "192.0.2.1", "ipmi_username": "admin", "ipmi_password": "s3cret"}},
			Values: append(append([]string{}, nodeValues...), ifaceValues...)},
		step{Name: "node create (minimal)", Method: "POST", Path: "/v1/nodes",
			Body: obj{"uuid": node2, "name": name2, "driver": "fake-hardware"}, Values: nodeValues},
		step{Name: "node create at 1.1 (starts available)", Method: "POST", Path: "/v1/nodes", Version: "1.1",
			Body: obj{"uuid": node3, "driver": "fake-hardware"}, Values: []string{"/provision_state"}},
		step{Name: "node create at 1.31 with interfaces", Method: "POST", Path: "/v1/nodes", Version: "1.31",
			Body:   obj{"uuid": node4, "driver": "fake-hardware", "deploy_interface": "fake", "network_interface": "noop"},
			Values: []string{"/provision_state", "/deploy_interface", "/network_interface"}},
		step{Name: "node create, ipmi", Method: "POST", Path: "/v1/nodes",
			Body: obj{"uuid": node5, "name": "compat-node-5", "driver": "ipmi",
				"driver_info": obj{"ipmi_address": "192.0.2.5", "ipmi_password": "pw"}},
			Values: append([]string{"/driver_info"}, ifaceValues...)},
		step{Name: "node create, name at 1.1 (too old)", Method: "POST", Path: "/v1/nodes", Version: "1.1",
			Body: obj{"driver": "fake-hardware", "name": "too-old"}},
		step{Name: "node create, duplicate name", Method: "POST", Path: "/v1/nodes",
			Body: obj{"driver": "fake-hardware", "name": name1}},
		step{Name: "node create, duplicate uuid", Method: "POST", Path: "/v1/nodes",
			Body: obj{"driver": "fake-hardware", "uuid": node1}},
		step{Name: "node create, unknown driver", Method: "POST", Path: "/v1/nodes",
			Body: obj{"driver": "no-such-driver", "uuid": nodeGone}},
		step{Name: "node create, no driver", Method: "POST", Path: "/v1/nodes", Body: obj{"uuid": nodeGone}},
		step{Name: "node create, unknown body field", Method: "POST", Path: "/v1/nodes",
			Body: obj{"driver": "fake-hardware", "uuid": nodeGone, "bogus_field": 1}},
		step{Name: "node create, read-only field", Method: "POST", Path: "/v1/nodes",
			Body: obj{"driver": "fake-hardware", "uuid": nodeGone, "provision_state": "active"}},
		step{Name: "node create, bad name", Method: "POST", Path: "/v1/nodes",
			Body: obj{"driver": "fake-hardware", "uuid": nodeGone, "name": "bad name!"}},
		step{Name: "node create, bad uuid", Method: "POST", Path: "/v1/nodes",
			Body: obj{"driver": "fake-hardware", "uuid": "not-a-uuid"}},
		step{Name: "node create, unknown chassis", Method: "POST", Path: "/v1/nodes",
			Body: obj{"driver": "fake-hardware", "uuid": nodeGone, "chassis_uuid": nodeGone}},
		step{Name: "node create, properties not an object", Method: "POST", Path: "/v1/nodes",
			Body: obj{"driver": "fake-hardware", "uuid": nodeGone, "properties": "cpus=4"}},
		step{Name: "node create, text/plain body", Method: "POST", Path: "/v1/nodes", Raw: "driver=fake-hardware",
			Header: map[string]string{"Content-Type": "text/plain"}},
		step{Name: "node create, malformed JSON", Method: "POST", Path: "/v1/nodes", Raw: `{"driver": "fake-hardware",`},
		step{Name: "node create, JSON array body", Method: "POST", Path: "/v1/nodes", Raw: `["fake-hardware"]`},
	)

	// Node listing, filters, fields and paging.
	add(
		step{Name: "node list", Method: "GET", Path: "/v1/nodes"},
		step{Name: "node list, detail", Method: "GET", Path: "/v1/nodes/detail"},
		step{Name: "node list, ?detail=true", Method: "GET", Path: "/v1/nodes?detail=true"},
		step{Name: "node list, fields", Method: "GET", Path: "/v1/nodes?fields=uuid,name,properties"},
		step{Name: "node list, unknown field", Method: "GET", Path: "/v1/nodes?fields=uuid,bogus"},
		step{Name: "node list, detail and fields", Method: "GET", Path: "/v1/nodes/detail?fields=uuid"},
		step{Name: "node list, limit=1", Method: "GET", Path: "/v1/nodes?limit=1",
			Save: map[string]string{"next1": "/next"}, Values: []string{"/nodes/0/uuid"}},
		step{Name: "node list, follow next", Method: "GET", Path: "{next1}",
			Values: []string{"/nodes/0/uuid"}},
		step{Name: "node list, limit=2 + driver filter", Method: "GET", Path: "/v1/nodes/detail?limit=2&driver=fake-hardware",
			Save: map[string]string{"next2": "/next"}},
		step{Name: "node list, follow filtered next", Method: "GET", Path: "{next2}", Values: []string{"/nodes/0/uuid"},
			Save: map[string]string{"next3": "/next"}},
		step{Name: "node list, follow filtered next again", Method: "GET", Path: "{next3}", Values: []string{"/nodes"}},
		step{Name: "node list, limit=0", Method: "GET", Path: "/v1/nodes?limit=0"},
		step{Name: "node list, limit=-1", Method: "GET", Path: "/v1/nodes?limit=-1"},
		step{Name: "node list, limit=abc", Method: "GET", Path: "/v1/nodes?limit=abc"},
		step{Name: "node list, limit above max_limit", Method: "GET", Path: "/v1/nodes?limit=5000&fields=uuid"},
		step{Name: "node list, bad marker", Method: "GET", Path: "/v1/nodes?marker=" + nodeGone},
		step{Name: "node list, maintenance=false", Method: "GET", Path: "/v1/nodes?maintenance=false"},
		step{Name: "node list, maintenance=true", Method: "GET", Path: "/v1/nodes?maintenance=true"},
		step{Name: "node list, maintenance=maybe", Method: "GET", Path: "/v1/nodes?maintenance=maybe"},
		step{Name: "node list, driver=fake-hardware", Method: "GET", Path: "/v1/nodes?driver=fake-hardware&fields=uuid"},
		step{Name: "node list, driver=ipmi", Method: "GET", Path: "/v1/nodes?driver=ipmi&fields=uuid", Values: []string{"/nodes"}},
		step{Name: "node list, provision_state=enroll", Method: "GET", Path: "/v1/nodes?provision_state=enroll&fields=uuid"},
		step{Name: "node list, provision_state=available", Method: "GET", Path: "/v1/nodes?provision_state=available&fields=uuid",
			Values: []string{"/nodes/0/uuid"}},
		step{Name: "node list, bad provision_state", Method: "GET", Path: "/v1/nodes?provision_state=bogus"},
		step{Name: "node list, resource_class", Method: "GET", Path: "/v1/nodes?resource_class=compat-rc&fields=uuid",
			Values: []string{"/nodes"}},
		step{Name: "node list, associated=false", Method: "GET", Path: "/v1/nodes?associated=false&fields=uuid"},
		step{Name: "node list, chassis_uuid", Method: "GET", Path: "/v1/nodes?chassis_uuid=" + chassis1 + "&fields=uuid",
			Values: []string{"/nodes"}},
		step{Name: "node list, sort by name desc", Method: "GET", Path: "/v1/nodes?sort_key=name&sort_dir=desc&fields=uuid,name",
			Values: []string{"/nodes/0/name"}},
		step{Name: "node list, bad sort_key", Method: "GET", Path: "/v1/nodes?sort_key=bogus"},
		step{Name: "node list, sort by a JSON field", Method: "GET", Path: "/v1/nodes?sort_key=properties"},
		step{Name: "node list, bad sort_dir", Method: "GET", Path: "/v1/nodes?sort_dir=sideways"},
		step{Name: "node list at 1.1", Method: "GET", Path: "/v1/nodes", Version: "1.1"},
		step{Name: "node list, detail at 1.1", Method: "GET", Path: "/v1/nodes/detail", Version: "1.1"},
		step{Name: "node list, detail at 1.31", Method: "GET", Path: "/v1/nodes/detail", Version: "1.31"},
		step{Name: "node list, detail at 1.49", Method: "GET", Path: "/v1/nodes/detail", Version: "1.49"},
		step{Name: "node list, resource_class at 1.20 (too old)", Method: "GET", Path: "/v1/nodes?resource_class=x", Version: "1.20"},
		step{Name: "chassis nodes", Method: "GET", Path: "/v1/chassis/" + chassis1 + "/nodes", Values: []string{"/nodes/0/uuid"}},
		step{Name: "chassis nodes, detail", Method: "GET", Path: "/v1/chassis/" + chassis1 + "/nodes/detail"},
	)

	// Node show.
	add(
		step{Name: "node show by uuid", Method: "GET", Path: "/v1/nodes/" + node1, Values: nodeValues},
		step{Name: "node show by name", Method: "GET", Path: "/v1/nodes/" + name1, Values: []string{"/uuid"}},
		step{Name: "node show, fields", Method: "GET", Path: "/v1/nodes/" + node1 + "?fields=uuid,driver_info",
			Values: []string{"/driver_info"}},
		step{Name: "node show without version header", Method: "GET", Path: "/v1/nodes/" + node1, Version: none},
		step{Name: "node show at 1.1", Method: "GET", Path: "/v1/nodes/" + node1, Version: "1.1"},
		step{Name: "node show by name at 1.1", Method: "GET", Path: "/v1/nodes/" + name1, Version: "1.1"},
		step{Name: "node show at 1.31", Method: "GET", Path: "/v1/nodes/" + node1, Version: "1.31"},
		step{Name: "node show at 1.49", Method: "GET", Path: "/v1/nodes/" + node1, Version: "1.49"},
		step{Name: "node show at latest", Method: "GET", Path: "/v1/nodes/" + node1, Version: "latest"},
		step{Name: "node show, unknown field", Method: "GET", Path: "/v1/nodes/" + node1 + "?fields=uuid,bogus"},
		step{Name: "node show, unknown uuid", Method: "GET", Path: "/v1/nodes/" + nodeGone},
		step{Name: "node show, unknown name", Method: "GET", Path: "/v1/nodes/no-such-node"},
		step{Name: "node states", Method: "GET", Path: "/v1/nodes/" + node1 + "/states",
			Values: []string{"/provision_state", "/power_state", "/target_provision_state"}},
		step{Name: "node states, unknown node", Method: "GET", Path: "/v1/nodes/" + nodeGone + "/states"},
		step{Name: "node vifs", Method: "GET", Path: "/v1/nodes/" + node1 + "/vifs", Values: []string{"/vifs"}},
		step{Name: "node vifs at 1.27 (too old)", Method: "GET", Path: "/v1/nodes/" + node1 + "/vifs", Version: "1.27"},
		step{Name: "wrong method on node collection", Method: "DELETE", Path: "/v1/nodes"},
		step{Name: "unknown node subresource", Method: "GET", Path: "/v1/nodes/" + node1 + "/bogus"},
	)

	// Node PATCH.
	p := "/v1/nodes/" + node1
	add(
		step{Name: "patch: add nested property", Method: "PATCH", Path: p,
			Body: patch(op("add", "/properties/x", "1")), Values: []string{"/properties"}},
		step{Name: "patch: replace nested property", Method: "PATCH", Path: p,
			Body: patch(op("replace", "/properties/cpus", 8)), Values: []string{"/properties"}},
		step{Name: "patch: remove nested property", Method: "PATCH", Path: p,
			Body: patch(op("remove", "/properties/x")), Values: []string{"/properties"}},
		step{Name: "patch: remove missing nested key", Method: "PATCH", Path: p,
			Body: patch(op("remove", "/properties/no_such_key"))},
		step{Name: "patch: replace missing nested key", Method: "PATCH", Path: p,
			Body: patch(op("replace", "/properties/no_such_key", "v")), Values: []string{"/properties"}},
		step{Name: "patch: add /extra key", Method: "PATCH", Path: p,
			Body: patch(op("add", "/extra/foo", obj{"bar": []any{1, 2}})), Values: []string{"/extra"}},
		step{Name: "patch: replace whole /extra", Method: "PATCH", Path: p,
			Body: patch(op("replace", "/extra", obj{"only": "this"})), Values: []string{"/extra"}},
		step{Name: "patch: add /driver_info key", Method: "PATCH", Path: p,
			Body: patch(op("add", "/driver_info/deploy_kernel", "http://192.0.2.9/k")), Values: []string{"/driver_info"}},
		step{Name: "patch: replace driver_info password", Method: "PATCH", Path: p,
			Body: patch(op("replace", "/driver_info/ipmi_password", "n3w")), Values: []string{"/driver_info"}},
		step{Name: "patch: remove /driver_info key", Method: "PATCH", Path: p,
			Body: patch(op("remove", "/driver_info/deploy_kernel")), Values: []string{"/driver_info"}},
		step{Name: "patch: replace name", Method: "PATCH", Path: p,
			Body: patch(op("replace", "/name", name1+"-renamed")), Values: []string{"/name"}},
		step{Name: "patch: rename back", Method: "PATCH", Path: p,
			Body: patch(op("replace", "/name", name1)), Values: []string{"/name"}},
		step{Name: "patch: remove name (node 2)", Method: "PATCH", Path: "/v1/nodes/" + node2,
			Body: patch(op("remove", "/name")), Values: []string{"/name"}},
		step{Name: "patch: name to an existing name", Method: "PATCH", Path: "/v1/nodes/" + node3,
			Body: patch(op("add", "/name", name1))},
		step{Name: "patch: escaped JSON pointer", Method: "PATCH", Path: p,
			Body: patch(op("add", "/extra/a~1b~0c", "v")), Values: []string{"/extra"}},
		step{Name: "patch: test op", Method: "PATCH", Path: p,
			Body: patch(op("test", "/extra/a~1b~0c", "v"))},
		step{Name: "patch: copy op", Method: "PATCH", Path: p,
			Body: patch(obj{"op": "copy", "from": "/extra/only", "path": "/extra/copied"}), Values: []string{"/extra"}},
		step{Name: "patch: move op", Method: "PATCH", Path: p,
			Body: patch(obj{"op": "move", "from": "/extra/copied", "path": "/extra/moved"}), Values: []string{"/extra"}},
		step{Name: "patch: replace whole /properties", Method: "PATCH", Path: p,
			Body:   patch(op("replace", "/properties", obj{"cpus": 2, "memory_mb": 1024, "local_gb": 10, "cpu_arch": "aarch64"})),
			Values: []string{"/properties"}},
		step{Name: "patch: several ops", Method: "PATCH", Path: p,
			Body: patch(op("add", "/properties/a", "1"), op("add", "/properties/b", "2"),
				op("remove", "/properties/a"), op("replace", "/resource_class", "compat-rc2")),
			Values: []string{"/properties", "/resource_class"}},
		step{Name: "patch: maintenance on", Method: "PATCH", Path: "/v1/nodes/" + node2,
			Body: patch(op("replace", "/maintenance", true)), Values: []string{"/maintenance"}},
		step{Name: "node list, maintenance=true after patch", Method: "GET", Path: "/v1/nodes?maintenance=true&fields=uuid",
			Values: []string{"/nodes"}},
		step{Name: "patch: owner, lessee, description", Method: "PATCH", Path: "/v1/nodes/" + node4,
			Body:   patch(op("add", "/owner", "proj-a"), op("add", "/lessee", "proj-b"), op("add", "/description", "rack 7")),
			Values: []string{"/owner", "/lessee", "/description"}},
		step{Name: "node list, owner filter", Method: "GET", Path: "/v1/nodes?owner=proj-a&fields=uuid", Values: []string{"/nodes"}},
		step{Name: "node list, lessee filter", Method: "GET", Path: "/v1/nodes?lessee=proj-b&fields=uuid", Values: []string{"/nodes"}},
		step{Name: "node list, description_contains", Method: "GET", Path: "/v1/nodes?description_contains=rack&fields=uuid",
			Values: []string{"/nodes"}},
		step{Name: "patch: set shard", Method: "PATCH", Path: "/v1/nodes/" + node4,
			Body: patch(op("add", "/shard", "shard-1")), Values: []string{"/shard"}},
		step{Name: "node list, shard filter", Method: "GET", Path: "/v1/nodes?shard=shard-1&fields=uuid,shard", Values: []string{"/nodes"}},
		step{Name: "node list, sharded=true", Method: "GET", Path: "/v1/nodes?sharded=true&fields=uuid", Values: []string{"/nodes"}},
		step{Name: "shard list", Method: "GET", Path: "/v1/shards"},
		step{Name: "patch: shard at 1.81 (too old)", Method: "PATCH", Path: "/v1/nodes/" + node4, Version: "1.81",
			Body: patch(op("add", "/shard", "shard-2"))},
		step{Name: "node list, conductor_group filter", Method: "GET", Path: "/v1/nodes?conductor_group=&fields=uuid"},
		step{Name: "node list, fault filter", Method: "GET", Path: "/v1/nodes?fault=power%20failure&fields=uuid"},
		step{Name: "node list, include_children (1.83)", Method: "GET", Path: "/v1/nodes?include_children=true"},
		step{Name: "patch: bad deploy_interface", Method: "PATCH", Path: "/v1/nodes/" + node4,
			Body: patch(op("replace", "/deploy_interface", "bogus"))},
		step{Name: "patch: set instance_uuid", Method: "PATCH", Path: "/v1/nodes/" + node3,
			Body:   patch(op("add", "/instance_uuid", instance), op("add", "/instance_info", obj{"image_source": "http://192.0.2.9/img"})),
			Values: []string{"/instance_uuid", "/instance_info"}},
		step{Name: "node list, associated=true", Method: "GET", Path: "/v1/nodes?associated=true&fields=uuid", Values: []string{"/nodes"}},
		step{Name: "node list, instance_uuid filter", Method: "GET", Path: "/v1/nodes?instance_uuid=" + instance + "&fields=uuid",
			Values: []string{"/nodes"}},
		step{Name: "node show by instance uuid", Method: "GET", Path: "/v1/nodes/detail?instance_uuid=" + instance,
			Values: []string{"/nodes/0/uuid"}},
		step{Name: "patch: refused /provision_state", Method: "PATCH", Path: p,
			Body: patch(op("replace", "/provision_state", "active"))},
		step{Name: "patch: refused /uuid", Method: "PATCH", Path: p,
			Body: patch(op("replace", "/uuid", nodeGone))},
		step{Name: "patch: refused /power_state", Method: "PATCH", Path: p,
			Body: patch(op("replace", "/power_state", "power on"))},
		step{Name: "patch: remove mandatory /driver", Method: "PATCH", Path: p,
			Body: patch(op("remove", "/driver"))},
		step{Name: "patch: unknown top-level field", Method: "PATCH", Path: p,
			Body: patch(op("add", "/bogus_field", "x"))},
		step{Name: "patch: bad op", Method: "PATCH", Path: p,
			Body: patch(op("frobnicate", "/extra/foo", "x"))},
		step{Name: "patch: missing value", Method: "PATCH", Path: p,
			Body: patch(op("add", "/extra/foo"))},
		step{Name: "patch: not a list", Method: "PATCH", Path: p,
			Body: op("add", "/extra/foo", "x")},
		step{Name: "patch: malformed JSON", Method: "PATCH", Path: p, Raw: `[{"op": "add"`},
		step{Name: "patch: unknown driver", Method: "PATCH", Path: p,
			Body: patch(op("replace", "/driver", "no-such-driver"))},
		step{Name: "patch: unknown node", Method: "PATCH", Path: "/v1/nodes/" + nodeGone,
			Body: patch(op("add", "/extra/foo", "x"))},
		step{Name: "node show after patches", Method: "GET", Path: p, Values: nodeValues},
	)

	// Traits.
	t := "/v1/nodes/" + node1 + "/traits"
	add(
		step{Name: "traits: PUT list", Method: "PUT", Path: t, Body: obj{"traits": []string{"CUSTOM_A", "CUSTOM_B"}}},
		step{Name: "traits: PUT one", Method: "PUT", Path: t + "/CUSTOM_C"},
		step{Name: "traits: PUT existing one", Method: "PUT", Path: t + "/CUSTOM_C"},
		step{Name: "traits: GET", Method: "GET", Path: t, Values: []string{"/traits"}},
		step{Name: "traits: in node show", Method: "GET", Path: "/v1/nodes/" + node1 + "?fields=uuid,traits",
			Values: []string{"/traits"}},
		step{Name: "traits: PUT invalid one", Method: "PUT", Path: t + "/not_custom"},
		step{Name: "traits: PUT list with invalid", Method: "PUT", Path: t, Body: obj{"traits": []string{"lower"}}},
		step{Name: "traits: PUT list, bad body", Method: "PUT", Path: t, Body: obj{"nope": []string{"CUSTOM_A"}}},
		step{Name: "traits: DELETE one", Method: "DELETE", Path: t + "/CUSTOM_A"},
		step{Name: "traits: DELETE missing one", Method: "DELETE", Path: t + "/CUSTOM_MISSING"},
		step{Name: "traits: GET after delete", Method: "GET", Path: t, Values: []string{"/traits"}},
		step{Name: "traits: DELETE all", Method: "DELETE", Path: t},
		step{Name: "traits: GET after delete all", Method: "GET", Path: t, Values: []string{"/traits"}},
		step{Name: "traits: GET at 1.36 (too old)", Method: "GET", Path: t, Version: "1.36"},
	)

	// Portgroups and ports.
	add(
		step{Name: "portgroup create", Method: "POST", Path: "/v1/portgroups",
			Body: obj{"uuid": pg1, "node_uuid": node1, "name": "compat-pg", "address": pgMAC,
				"mode": "active-backup", "extra": obj{"k": "v"}},
			Values: []string{"/uuid", "/name", "/address", "/mode", "/node_uuid", "/standalone_ports_supported"}},
		step{Name: "portgroup create, duplicate name", Method: "POST", Path: "/v1/portgroups",
			Body: obj{"node_uuid": node1, "name": "compat-pg"}},
		step{Name: "portgroup create at 1.22 (too old)", Method: "POST", Path: "/v1/portgroups", Version: "1.22",
			Body: obj{"node_uuid": node1}},
		step{Name: "portgroup list", Method: "GET", Path: "/v1/portgroups"},
		step{Name: "portgroup list, detail", Method: "GET", Path: "/v1/portgroups/detail"},
		step{Name: "portgroup list, fields", Method: "GET", Path: "/v1/portgroups?fields=uuid,mode"},
		step{Name: "portgroup list, by node", Method: "GET", Path: "/v1/portgroups?node=" + name1},
		step{Name: "portgroup show", Method: "GET", Path: "/v1/portgroups/" + pg1},
		step{Name: "portgroup show by name", Method: "GET", Path: "/v1/portgroups/compat-pg", Values: []string{"/uuid"}},
		step{Name: "portgroup patch", Method: "PATCH", Path: "/v1/portgroups/" + pg1,
			Body: patch(op("replace", "/extra/k", "v2"), op("replace", "/mode", "802.3ad")), Values: []string{"/extra", "/mode"}},
		step{Name: "node portgroups", Method: "GET", Path: "/v1/nodes/" + node1 + "/portgroups"},
		step{Name: "port create", Method: "POST", Path: "/v1/ports",
			Body: obj{"uuid": port1, "node_uuid": node1, "address": mac1, "pxe_enabled": true,
				"extra":                 obj{"vif_hint": "x"},
				"local_link_connection": obj{"switch_id": "0a:1b:2c:3d:4e:5f", "port_id": "Ethernet1/1", "switch_info": "sw1"}},
			Values: []string{"/uuid", "/address", "/node_uuid", "/pxe_enabled", "/local_link_connection", "/extra"}},
		step{Name: "port create in portgroup", Method: "POST", Path: "/v1/ports",
			Body:   obj{"uuid": port2, "node_uuid": node1, "address": mac2, "portgroup_uuid": pg1},
			Values: []string{"/portgroup_uuid"}},
		step{Name: "port create on node 2", Method: "POST", Path: "/v1/ports",
			Body: obj{"uuid": port3, "node_uuid": node2, "address": mac3}},
		step{Name: "port create, bad MAC", Method: "POST", Path: "/v1/ports",
			Body: obj{"node_uuid": node1, "address": "52:54:00:zz:00:01"}},
		step{Name: "port create, duplicate MAC", Method: "POST", Path: "/v1/ports",
			Body: obj{"node_uuid": node2, "address": mac1}},
		step{Name: "port create, upper-case MAC", Method: "POST", Path: "/v1/ports",
			Body: obj{"node_uuid": node2, "address": "52:54:00:12:34:BB", "uuid": port4}, Values: []string{"/address"}},
		step{Name: "port create, duplicate MAC in upper case", Method: "POST", Path: "/v1/ports",
			Body: obj{"node_uuid": node2, "address": "52:54:00:12:34:0A"}},
		step{Name: "port create, no node", Method: "POST", Path: "/v1/ports",
			Body: obj{"address": "52:54:00:12:34:99"}},
		step{Name: "port create, unknown node", Method: "POST", Path: "/v1/ports",
			Body: obj{"node_uuid": nodeGone, "address": "52:54:00:12:34:99"}},
		step{Name: "port create, unknown field", Method: "POST", Path: "/v1/ports",
			Body: obj{"node_uuid": node1, "address": "52:54:00:12:34:98", "bogus": true}},
		step{Name: "port list", Method: "GET", Path: "/v1/ports"},
		step{Name: "port list, detail", Method: "GET", Path: "/v1/ports/detail"},
		step{Name: "port list, fields", Method: "GET", Path: "/v1/ports?fields=uuid,address,pxe_enabled"},
		step{Name: "port list, by node name", Method: "GET", Path: "/v1/ports?node=" + name1 + "&fields=uuid",
			Values: []string{"/ports"}},
		step{Name: "port list, by node_uuid", Method: "GET", Path: "/v1/ports?node_uuid=" + node2 + "&fields=uuid",
			Values: []string{"/ports"}},
		step{Name: "port list, by address", Method: "GET", Path: "/v1/ports?address=" + mac1 + "&fields=uuid",
			Values: []string{"/ports"}},
		step{Name: "port list, by portgroup", Method: "GET", Path: "/v1/ports?portgroup=" + pg1 + "&fields=uuid",
			Values: []string{"/ports"}},
		step{Name: "port list, limit=1", Method: "GET", Path: "/v1/ports?limit=1", Save: map[string]string{"pnext": "/next"}},
		step{Name: "port list, follow next", Method: "GET", Path: "{pnext}", Values: []string{"/ports/0/uuid"}},
		step{Name: "port list at 1.1", Method: "GET", Path: "/v1/ports/detail", Version: "1.1"},
		step{Name: "port list, detail at 1.49", Method: "GET", Path: "/v1/ports/detail", Version: "1.49"},
		step{Name: "node ports", Method: "GET", Path: "/v1/nodes/" + node1 + "/ports"},
		step{Name: "node ports, detail", Method: "GET", Path: "/v1/nodes/" + node1 + "/ports/detail"},
		step{Name: "portgroup ports", Method: "GET", Path: "/v1/portgroups/" + pg1 + "/ports", Values: []string{"/ports/0/uuid"}},
		step{Name: "port show", Method: "GET", Path: "/v1/ports/" + port1},
		step{Name: "port show, unknown", Method: "GET", Path: "/v1/ports/" + nodeGone},
		step{Name: "port patch", Method: "PATCH", Path: "/v1/ports/" + port1,
			Body:   patch(op("replace", "/extra/vif_hint", "y"), op("replace", "/pxe_enabled", false)),
			Values: []string{"/extra", "/pxe_enabled"}},
		step{Name: "port patch, bad MAC", Method: "PATCH", Path: "/v1/ports/" + port1,
			Body: patch(op("replace", "/address", "not-a-mac"))},
		step{Name: "port patch, duplicate MAC", Method: "PATCH", Path: "/v1/ports/" + port1,
			Body: patch(op("replace", "/address", mac3))},
		step{Name: "port patch, move to node 2", Method: "PATCH", Path: "/v1/ports/" + port1,
			Body: patch(op("replace", "/node_uuid", node2)), Values: []string{"/node_uuid"}},
		step{Name: "port patch, move back to node 1", Method: "PATCH", Path: "/v1/ports/" + port1,
			Body: patch(op("replace", "/node_uuid", node1)), Values: []string{"/node_uuid"}},
		step{Name: "port patch, refused /uuid", Method: "PATCH", Path: "/v1/ports/" + port1,
			Body: patch(op("replace", "/uuid", nodeGone))},
		step{Name: "portgroup delete with ports", Method: "DELETE", Path: "/v1/portgroups/" + pg1},
		step{Name: "port delete", Method: "DELETE", Path: "/v1/ports/" + port2},
		step{Name: "port delete again", Method: "DELETE", Path: "/v1/ports/" + port2},
		step{Name: "portgroup delete", Method: "DELETE", Path: "/v1/portgroups/" + pg1},
	)

	// Deletes.
	add(
		step{Name: "chassis delete with nodes", Method: "DELETE", Path: "/v1/chassis/" + chassis1},
		step{Name: "node delete by name", Method: "DELETE", Path: "/v1/nodes/" + name1},
		step{Name: "node show after delete", Method: "GET", Path: "/v1/nodes/" + node1},
		step{Name: "port of deleted node", Method: "GET", Path: "/v1/ports/" + port1},
		step{Name: "node delete in maintenance", Method: "DELETE", Path: "/v1/nodes/" + node2},
		step{Name: "node delete, associated with an instance", Method: "DELETE", Path: "/v1/nodes/" + node3},
		step{Name: "patch: remove instance_uuid", Method: "PATCH", Path: "/v1/nodes/" + node3,
			Body: patch(op("remove", "/instance_uuid")), Values: []string{"/instance_uuid"}},
		step{Name: "node delete (available)", Method: "DELETE", Path: "/v1/nodes/" + node3},
		step{Name: "node delete (ipmi)", Method: "DELETE", Path: "/v1/nodes/" + node5},
		step{Name: "node delete", Method: "DELETE", Path: "/v1/nodes/" + node4},
		step{Name: "node delete again", Method: "DELETE", Path: "/v1/nodes/" + node4},
		step{Name: "chassis delete", Method: "DELETE", Path: "/v1/chassis/" + chassis1},
		step{Name: "node list, empty", Method: "GET", Path: "/v1/nodes"},
		step{Name: "port list, empty", Method: "GET", Path: "/v1/ports"},
	)
	add(conductorSteps()...)
	return s
}

// conductorSteps drive the conductor's endpoints: provision and power states, maintenance,
// boot devices, validation, VIFs, history, allocations, deploy templates and volume records.
// Steps answered with 202 wait for the conductor (Await) on each side.
func conductorSteps() []step {
	n := "/v1/nodes/" + node6
	prov := n + "/states/provision"
	settled := func(state string) *await {
		return &await{Path: n, Ptr: "/provision_state", Want: state}
	}
	target := func(t string) obj { return obj{"target": t} }
	return []step{
		{Name: "ops: node create", Method: "POST", Path: "/v1/nodes",
			Body: obj{"uuid": node6, "name": "compat-node-6", "driver": "fake-hardware", "resource_class": "compat-ops"}},
		{Name: "ops: deploy from enroll (refused)", Method: "PUT", Path: prov, Body: target("active")},
		{Name: "ops: unknown provision target", Method: "PUT", Path: prov, Body: target("bogus")},
		{Name: "ops: provision body without target", Method: "PUT", Path: prov, Body: obj{}},
		{Name: "ops: provision, unknown node", Method: "PUT", Path: "/v1/nodes/" + nodeGone + "/states/provision",
			Body: target("manage")},
		{Name: "ops: manage", Method: "PUT", Path: prov, Body: target("manage"), Await: settled("manageable")},
		{Name: "ops: states after manage", Method: "GET", Path: n + "/states",
			Values: []string{"/provision_state", "/target_provision_state", "/power_state", "/last_error"}},
		{Name: "ops: manage again (refused)", Method: "PUT", Path: prov, Body: target("manage")},
		{Name: "ops: deploy from manageable (refused)", Method: "PUT", Path: prov, Body: target("active")},
		{Name: "ops: clean without steps (refused)", Method: "PUT", Path: prov, Body: target("clean")},
		{Name: "ops: clean, steps not a list", Method: "PUT", Path: prov, Body: obj{"target": "clean", "clean_steps": "x"}},
		{Name: "ops: provide", Method: "PUT", Path: prov, Body: target("provide"), Await: settled("available")},
		{Name: "ops: power on", Method: "PUT", Path: n + "/states/power", Body: target("power on"),
			Await: &await{Path: n, Ptr: "/power_state", Want: "power on"}},
		{Name: "ops: power, unknown target", Method: "PUT", Path: n + "/states/power", Body: target("power sideways")},
		{Name: "ops: power, timeout at 1.26 (too old)", Method: "PUT", Path: n + "/states/power", Version: "1.26",
			Body: obj{"target": "power off", "timeout": 10}},
		{Name: "ops: power, bad timeout", Method: "PUT", Path: n + "/states/power", Body: obj{"target": "power off", "timeout": -1}},
		{Name: "ops: power off", Method: "PUT", Path: n + "/states/power", Body: target("power off"),
			Await: &await{Path: n, Ptr: "/power_state", Want: "power off"}},
		{Name: "ops: boot device set", Method: "PUT", Path: n + "/management/boot_device",
			Body: obj{"boot_device": "pxe", "persistent": true}},
		{Name: "ops: boot device get", Method: "GET", Path: n + "/management/boot_device"},
		{Name: "ops: boot device, unknown", Method: "PUT", Path: n + "/management/boot_device", Body: obj{"boot_device": "floppy9"}},
		{Name: "ops: supported boot devices", Method: "GET", Path: n + "/management/boot_device/supported"},
		{Name: "ops: validate", Method: "GET", Path: n + "/validate"},
		{Name: "ops: maintenance on", Method: "PUT", Path: n + "/maintenance", Body: obj{"reason": "compat check"},
			Await: &await{Path: n, Ptr: "/maintenance", Want: true}},
		{Name: "ops: node in maintenance", Method: "GET", Path: n, Values: []string{"/maintenance", "/maintenance_reason"}},
		{Name: "ops: maintenance off", Method: "DELETE", Path: n + "/maintenance",
			Await: &await{Path: n, Ptr: "/maintenance", Want: false}},
		{Name: "ops: vif attach", Method: "POST", Path: n + "/vifs", Body: obj{"id": vif1}},
		{Name: "ops: vif list", Method: "GET", Path: n + "/vifs", Values: []string{"/vifs"}},
		{Name: "ops: vif attach, no id", Method: "POST", Path: n + "/vifs", Body: obj{}},
		{Name: "ops: vif detach", Method: "DELETE", Path: n + "/vifs/" + vif1},
		{Name: "ops: vif detach again", Method: "DELETE", Path: n + "/vifs/" + vif1},
		{Name: "ops: deploy", Method: "PUT", Path: prov, Body: target("active"), Await: settled("active")},
		{Name: "ops: node after deploy", Method: "GET", Path: n,
			Values: []string{"/provision_state", "/target_provision_state", "/power_state", "/last_error"}},
		{Name: "ops: deploy again (refused)", Method: "PUT", Path: prov, Body: target("active")},
		{Name: "ops: delete while active (refused)", Method: "DELETE", Path: n},
		{Name: "ops: rebuild", Method: "PUT", Path: prov, Body: target("rebuild"), Await: settled("active")},
		{Name: "ops: history", Method: "GET", Path: n + "/history"},
		{Name: "ops: history at 1.77 (too old)", Method: "GET", Path: n + "/history", Version: "1.77"},
		{Name: "ops: undeploy", Method: "PUT", Path: prov, Body: target("deleted"), Await: settled("available")},
		{Name: "ops: states after undeploy", Method: "GET", Path: n + "/states",
			Values: []string{"/provision_state", "/target_provision_state", "/last_error"}},

		// Day two on the fake interfaces: inspection, RAID, BIOS, console, rescue, inventory.
		{Name: "day2: manage for inspection", Method: "PUT", Path: prov, Body: target("manage"), Await: settled("manageable")},
		{Name: "day2: inspect", Method: "PUT", Path: prov, Body: target("inspect"), Await: settled("manageable")},
		{Name: "day2: inventory", Method: "GET", Path: n + "/inventory"},
		{Name: "day2: raid target", Method: "PUT", Path: n + "/states/raid",
			Body: obj{"logical_disks": []obj{{"size_gb": 100, "raid_level": "1", "is_root_volume": true}}}},
		{Name: "day2: raid target shown", Method: "GET", Path: n + "?fields=target_raid_config", Values: []string{"/target_raid_config"}},
		{Name: "day2: raid target, bad level", Method: "PUT", Path: n + "/states/raid",
			Body: obj{"logical_disks": []obj{{"size_gb": 100, "raid_level": "7"}}}},
		{Name: "day2: raid target, not a list", Method: "PUT", Path: n + "/states/raid", Body: obj{"logical_disks": "x"}},
		{Name: "day2: bios settings", Method: "GET", Path: n + "/bios"},
		{Name: "day2: bios setting, unknown", Method: "GET", Path: n + "/bios/NoSuchSetting"},
		{Name: "day2: console state", Method: "GET", Path: n + "/states/console", Values: []string{"/console_enabled"}},
		{Name: "day2: console, bad body", Method: "PUT", Path: n + "/states/console", Body: obj{"enabled": "maybe"}},
		{Name: "day2: vendor methods", Method: "GET", Path: n + "/vendor_passthru/methods"},
		{Name: "day2: provide", Method: "PUT", Path: prov, Body: target("provide"), Await: settled("available")},
		{Name: "day2: rescue when available (refused)", Method: "PUT", Path: prov, Body: obj{"target": "rescue", "rescue_password": "pw"}},
		{Name: "day2: deploy for rescue", Method: "PUT", Path: prov, Body: target("active"), Await: settled("active")},
		{Name: "day2: rescue without password", Method: "PUT", Path: prov, Body: target("rescue")},
		{Name: "day2: rescue, empty password", Method: "PUT", Path: prov, Body: obj{"target": "rescue", "rescue_password": " "}},
		{Name: "day2: rescue", Method: "PUT", Path: prov, Body: obj{"target": "rescue", "rescue_password": "pw"}, Await: settled("rescue")},
		{Name: "day2: node in rescue", Method: "GET", Path: n, Values: []string{"/provision_state", "/instance_info"}},
		{Name: "day2: unrescue", Method: "PUT", Path: prov, Body: target("unrescue"), Await: settled("active")},
		{Name: "day2: undeploy", Method: "PUT", Path: prov, Body: target("deleted"), Await: settled("available")},

		// Allocations (processed by the conductor: await their state).
		{Name: "alloc: node at 1.1 (available)", Method: "POST", Path: "/v1/nodes", Version: "1.1",
			Body: obj{"uuid": node7, "driver": "fake-hardware"}},
		{Name: "alloc: node resource class", Method: "PATCH", Path: "/v1/nodes/" + node7,
			Body: patch(op("add", "/resource_class", "compat-alloc"))},
		// A node without a power state is no candidate (on both sides): give it one.
		{Name: "alloc: node powered off", Method: "PUT", Path: "/v1/nodes/" + node7 + "/states/power", Body: target("power off"),
			Await: &await{Path: "/v1/nodes/" + node7, Ptr: "/power_state", Want: "power off"}},
		{Name: "alloc: create", Method: "POST", Path: "/v1/allocations",
			Body:  obj{"uuid": alloc1, "name": "compat-alloc-1", "resource_class": "compat-alloc"},
			Await: &await{Path: "/v1/allocations/" + alloc1, Ptr: "/state", Want: "active"}},
		{Name: "alloc: show", Method: "GET", Path: "/v1/allocations/" + alloc1,
			Values: []string{"/state", "/node_uuid", "/resource_class", "/last_error"}},
		{Name: "alloc: show by name", Method: "GET", Path: "/v1/allocations/compat-alloc-1", Values: []string{"/uuid"}},
		{Name: "alloc: node's allocation", Method: "GET", Path: "/v1/nodes/" + node7 + "/allocation", Values: []string{"/uuid"}},
		{Name: "alloc: node shows it", Method: "GET", Path: "/v1/nodes/" + node7, Values: []string{"/allocation_uuid", "/instance_uuid"}},
		{Name: "alloc: list", Method: "GET", Path: "/v1/allocations"},
		{Name: "alloc: list by state", Method: "GET", Path: "/v1/allocations?state=active&fields=uuid", Values: []string{"/allocations"}},
		{Name: "alloc: list, bad state", Method: "GET", Path: "/v1/allocations?state=bogus"},
		{Name: "alloc: none left", Method: "POST", Path: "/v1/allocations",
			Body:  obj{"uuid": alloc2, "resource_class": "compat-alloc"},
			Await: &await{Path: "/v1/allocations/" + alloc2, Ptr: "/state", Want: "error"}},
		{Name: "alloc: the failed one", Method: "GET", Path: "/v1/allocations/" + alloc2, Values: []string{"/state", "/node_uuid"}},
		{Name: "alloc: no resource class", Method: "POST", Path: "/v1/allocations", Body: obj{"name": "compat-alloc-x"}},
		{Name: "alloc: unknown field", Method: "POST", Path: "/v1/allocations",
			Body: obj{"resource_class": "compat-alloc", "bogus": 1}},
		{Name: "alloc: at 1.51 (too old)", Method: "POST", Path: "/v1/allocations", Version: "1.51",
			Body: obj{"resource_class": "compat-alloc"}},
		{Name: "alloc: patch name", Method: "PATCH", Path: "/v1/allocations/" + alloc1,
			Body: patch(op("replace", "/name", "compat-alloc-renamed")), Values: []string{"/name"}},
		{Name: "alloc: patch refused field", Method: "PATCH", Path: "/v1/allocations/" + alloc1,
			Body: patch(op("replace", "/resource_class", "other"))},
		{Name: "alloc: delete", Method: "DELETE", Path: "/v1/allocations/" + alloc1},
		{Name: "alloc: node after delete", Method: "GET", Path: "/v1/nodes/" + node7, Values: []string{"/allocation_uuid", "/instance_uuid"}},
		{Name: "alloc: delete the failed one", Method: "DELETE", Path: "/v1/allocations/" + alloc2},
		{Name: "alloc: show deleted", Method: "GET", Path: "/v1/allocations/" + alloc1},

		// Deploy templates.
		{Name: "template: create", Method: "POST", Path: "/v1/deploy_templates",
			Body: obj{"uuid": tmpl1, "name": "CUSTOM_COMPAT", "steps": []obj{{"interface": "bios", "step": "apply_configuration",
				"args": obj{"settings": []obj{{"name": "LogicalProc", "value": "Enabled"}}}, "priority": 150}}},
			Values: []string{"/name", "/steps"}},
		{Name: "template: create, bad name", Method: "POST", Path: "/v1/deploy_templates",
			Body: obj{"name": "not-custom", "steps": []obj{{"interface": "bios", "step": "apply_configuration", "args": obj{}, "priority": 150}}}},
		{Name: "template: create, duplicate name", Method: "POST", Path: "/v1/deploy_templates",
			Body: obj{"name": "CUSTOM_COMPAT", "steps": []obj{{"interface": "bios", "step": "apply_configuration", "args": obj{}, "priority": 150}}}},
		{Name: "template: create, no steps", Method: "POST", Path: "/v1/deploy_templates", Body: obj{"name": "CUSTOM_EMPTY"}},
		{Name: "template: create, unknown interface", Method: "POST", Path: "/v1/deploy_templates",
			Body: obj{"name": "CUSTOM_BAD_IFACE", "steps": []obj{{"interface": "toaster", "step": "x", "args": obj{}, "priority": 1}}}},
		{Name: "template: list", Method: "GET", Path: "/v1/deploy_templates"},
		{Name: "template: list, detail", Method: "GET", Path: "/v1/deploy_templates?detail=true"},
		{Name: "template: show by name", Method: "GET", Path: "/v1/deploy_templates/CUSTOM_COMPAT", Values: []string{"/uuid", "/steps"}},
		{Name: "template: patch extra", Method: "PATCH", Path: "/v1/deploy_templates/" + tmpl1,
			Body: patch(op("add", "/extra/k", "v")), Values: []string{"/extra"}},
		{Name: "template: at 1.54 (too old)", Method: "GET", Path: "/v1/deploy_templates", Version: "1.54"},
		{Name: "template: delete", Method: "DELETE", Path: "/v1/deploy_templates/" + tmpl1},
		{Name: "template: show deleted", Method: "GET", Path: "/v1/deploy_templates/" + tmpl1},

		// Volume connectors and targets (the node must be powered off or in a stable state).
		{Name: "volume: root", Method: "GET", Path: "/v1/volume"},
		{Name: "volume: connector create", Method: "POST", Path: "/v1/volume/connectors",
			Body:   obj{"uuid": vconn1, "node_uuid": node6, "type": "iqn", "connector_id": "iqn.2024-01.org.example:compat"},
			Values: []string{"/type", "/connector_id", "/node_uuid"}},
		{Name: "volume: connector duplicate", Method: "POST", Path: "/v1/volume/connectors",
			Body: obj{"node_uuid": node6, "type": "iqn", "connector_id": "iqn.2024-01.org.example:compat"}},
		{Name: "volume: connector, bad type", Method: "POST", Path: "/v1/volume/connectors",
			Body: obj{"node_uuid": node6, "type": "floppy", "connector_id": "x"}},
		{Name: "volume: connectors list", Method: "GET", Path: "/v1/volume/connectors"},
		{Name: "volume: connectors of the node", Method: "GET", Path: n + "/volume/connectors"},
		{Name: "volume: target create", Method: "POST", Path: "/v1/volume/targets",
			Body: obj{"uuid": vtgt1, "node_uuid": node6, "volume_type": "iscsi", "volume_id": "vol-compat", "boot_index": 0,
				"properties": obj{"target_iqn": "iqn.2024-01.org.example:vol"}},
			Values: []string{"/volume_type", "/volume_id", "/boot_index"}},
		{Name: "volume: target duplicate boot index", Method: "POST", Path: "/v1/volume/targets",
			Body: obj{"node_uuid": node6, "volume_type": "iscsi", "volume_id": "vol-2", "boot_index": 0}},
		{Name: "volume: targets list, detail", Method: "GET", Path: "/v1/volume/targets?detail=true"},
		{Name: "volume: target delete", Method: "DELETE", Path: "/v1/volume/targets/" + vtgt1},
		{Name: "volume: connector delete", Method: "DELETE", Path: "/v1/volume/connectors/" + vconn1},

		{Name: "ops: node delete", Method: "DELETE", Path: n},
		{Name: "alloc: node delete", Method: "DELETE", Path: "/v1/nodes/" + node7},
	}
}

// cleanup removes what steps creates; it runs before and after, unrecorded.
func cleanup() []step {
	var s []step
	for _, p := range []string{port1, port2, port3, port4} {
		s = append(s, step{Method: "DELETE", Path: "/v1/ports/" + p})
	}
	s = append(s, step{Method: "DELETE", Path: "/v1/portgroups/" + pg1},
		step{Method: "PATCH", Path: "/v1/nodes/" + node3, Body: patch(op("remove", "/instance_uuid"))})
	s = append(s, step{Method: "DELETE", Path: "/v1/volume/targets/" + vtgt1},
		step{Method: "DELETE", Path: "/v1/volume/connectors/" + vconn1},
		step{Method: "DELETE", Path: "/v1/allocations/" + alloc1},
		step{Method: "DELETE", Path: "/v1/allocations/" + alloc2},
		step{Method: "DELETE", Path: "/v1/deploy_templates/" + tmpl1},
		step{Method: "PUT", Path: "/v1/nodes/" + node6 + "/states/provision", Body: obj{"target": "deleted"}})
	for _, n := range []string{node1, node2, node3, node4, node5, node6, node7, nodeGone} {
		s = append(s, step{Method: "DELETE", Path: "/v1/nodes/" + n})
	}
	return append(s, step{Method: "DELETE", Path: "/v1/chassis/" + chassis1})
}
