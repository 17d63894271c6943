package ironwork

import "strings"

// Boot modes as Ironic names them.
const (
	BootModeBIOS = "bios"
	BootModeUEFI = "uefi"
)

// ResolveBootMode is the mode a node boots in, as Ironic resolves it for a deployment: UEFI
// when secure boot is asked for (the secure_boot capability), instance_info's
// deploy_boot_mode, a boot_mode capability (instance_info's, then properties'), the mode its
// BMC last reported (the node's boot_mode field), then def, the conductor's default.
func ResolveBootMode(n *Node, def string) string {
	for _, src := range []JSONObject{n.InstanceInfo, n.Properties} {
		if strings.EqualFold(Capability(src["capabilities"], "secure_boot"), "true") {
			return BootModeUEFI
		}
	}
	if m, _ := n.InstanceInfo["deploy_boot_mode"].(string); m != "" {
		return strings.ToLower(m)
	}
	for _, src := range []JSONObject{n.InstanceInfo, n.Properties} {
		if m := Capability(src["capabilities"], "boot_mode"); m != "" {
			return strings.ToLower(m)
		}
	}
	if n.BootMode != "" {
		return strings.ToLower(n.BootMode)
	}
	return strings.ToLower(def)
}

// Capability reads key from Ironic's capabilities, a "k1:v1,k2:v2" string or an object.
func Capability(caps any, key string) string {
	switch c := caps.(type) {
	case string:
		for _, kv := range strings.Split(c, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), ":")
			if ok && strings.TrimSpace(k) == key {
				return strings.TrimSpace(v)
			}
		}
	case map[string]any:
		switch v := c[key].(type) {
		case string:
			return v
		case bool:
			if v {
				return "true"
			}
			return "false"
		}
	}
	return ""
}
