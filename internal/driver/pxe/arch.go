package pxe

import (
	"strings"

	"github.com/ironwork/ironwork"
)

// CPUArch is a node's properties.cpu_arch in Ironic's spelling: "aarch64" for arm64 (which
// Ironic also accepts), "x86_64" for amd64/x64, others as they are; "" when unset.
func CPUArch(n *ironwork.Node) string {
	a, _ := n.Properties["cpu_arch"].(string)
	switch strings.ToLower(strings.TrimSpace(a)) {
	case "arm64", "aarch64":
		return "aarch64"
	case "amd64", "x86_64", "x64":
		return "x86_64"
	}
	return strings.TrimSpace(a)
}

// deployImage is the source of a node's deploy (or rescue) kernel or ramdisk, key being
// "deploy_kernel" or "deploy_ramdisk" (or the rescue ones): driver_info's when set, else,
// for the deploy ones, the conductor's for the node's cpu_arch (Ironic's
// [conductor]deploy_kernel_by_arch and deploy_ramdisk_by_arch); "" when neither has one.
func (c Config) deployImage(n *ironwork.Node, key string) string {
	if s, _ := n.DriverInfo[key].(string); s != "" {
		return s
	}
	var byArch map[string]string
	switch key {
	case "deploy_kernel":
		byArch = c.DeployKernelByArch
	case "deploy_ramdisk":
		byArch = c.DeployRamdiskByArch
	}
	return byArch[CPUArch(n)]
}

// NormalizeArchKeys returns m with its keys in CPUArch's spelling (arm64 becomes aarch64), for
// configuration maps keyed by architecture.
func NormalizeArchKeys(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[CPUArch(&ironwork.Node{Properties: ironwork.JSONObject{"cpu_arch": k}})] = v
	}
	return out
}
