// Package instance turns a request for a machine into a deployed node through the API alone,
// as metalsmith does for Ironic: it asks for an allocation that picks a matching node, attaches
// the requested VIFs, builds the instance information and the config drive (hostname, SSH keys,
// user data, network data), starts the deploy and follows the node until it is active. It also
// takes an instance back down. It holds no server logic; the ironwork deploy and undeploy
// commands and the lab use it.
package instance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/ironwork/ironwork/api"
)

// Client is the part of the API client this package uses; *api.Client is one.
type Client interface {
	Do(ctx context.Context, method, path string, body, out any) error
}

// Request describes the instance to deploy.
type Request struct {
	// ResourceClass the node must have (required).
	ResourceClass string
	// Traits the node must have; they are also the instance's traits, which select deploy
	// templates.
	Traits []string
	// Capabilities the node must have, such as cpu_arch or boot_mode.
	Capabilities map[string]string
	// Candidates limits the choice to these nodes (names or UUIDs); empty means any.
	Candidates []string
	// Hostname of the instance: the allocation's name and the config drive's hostname.
	Hostname string
	// Image is the whole-disk image URL (http, https, file, or an oci:// registry reference);
	// Checksum its checksum: a hex digest (MD5, SHA-256 or SHA-512 by length), "algo:hex", or
	// the URL of a checksum file (an oci:// image needs none: the registry's digest is used).
	Image, Checksum string
	// PullSecret is the registry credential of an oci:// image (instance_info's
	// image_pull_secret); DownloadSource is image_download_source (http or local), empty for
	// the conductor's default.
	PullSecret, DownloadSource string
	// DiskFormat is raw or qcow2; empty leaves it to the agent to detect.
	DiskFormat string
	// SSHKeys are public keys (one authorized_keys line each).
	SSHKeys []string
	// UserData is handed to the instance as is (cloud-init's user data).
	UserData []byte
	// Networks to attach, one VIF each; none means one VIF configured by DHCP.
	Networks []Network
	// Owner of the allocation, if any.
	Owner string
	// Poll is how often the node is read while waiting (default 1 s).
	Poll time.Duration
}

// Network is one VIF of the instance and how the instance configures it.
type Network struct {
	// VIF is the VIF's id; empty means a generated one.
	VIF string
	// Address is a static address with its prefix; the zero value means DHCP.
	Address netip.Prefix
	// Gateway is the default route through this network, if any.
	Gateway netip.Addr
	// DNS servers.
	DNS []netip.Addr
}

// ParseNetwork reads a --network value: "dhcp", or comma-separated key=value pairs among
// vif=ID, ip=ADDRESS/PREFIX, gateway=ADDRESS and dns=ADDRESS (repeatable).
func ParseNetwork(s string) (Network, error) {
	var n Network
	if s == "" || s == "dhcp" {
		return n, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return n, fmt.Errorf("network %q: %q is not key=value (keys: vif, ip, gateway, dns)", s, kv)
		}
		var err error
		switch k {
		case "vif":
			n.VIF = v
		case "ip":
			n.Address, err = netip.ParsePrefix(v)
		case "gateway":
			n.Gateway, err = netip.ParseAddr(v)
		case "dns":
			var a netip.Addr
			if a, err = netip.ParseAddr(v); err == nil {
				n.DNS = append(n.DNS, a)
			}
		default:
			return n, fmt.Errorf("network %q: unknown key %q (keys: vif, ip, gateway, dns)", s, k)
		}
		if err != nil {
			return n, fmt.Errorf("network %q: %s: %w", s, k, err)
		}
	}
	if n.Gateway.IsValid() && !n.Address.IsValid() {
		return n, fmt.Errorf("network %q: a gateway needs a static ip", s)
	}
	if n.Address.IsValid() && n.Gateway.IsValid() && !n.Address.Contains(n.Gateway) {
		return n, fmt.Errorf("network %q: gateway %s is outside %s", s, n.Gateway, n.Address.Masked())
	}
	return n, nil
}

// Instance is a deployed node as Deploy leaves it.
type Instance struct {
	Node, NodeName, Allocation string
	ProvisionState             string
	NICs                       []NIC
}

// NIC is one attached VIF and where it landed.
type NIC struct {
	VIF, Port, MAC string
	// Address is the static address, or "dhcp".
	Address string
}

// Status is what Deploy and Undeploy report while they wait.
type Status struct {
	Node, ProvisionState, TargetState string
	// Step is the running deploy or clean step, as interface.step.
	Step string
	// BytesDone and BytesTotal come from the agent's progress (BytesTotal -1: unknown).
	BytesDone, BytesTotal int64
	LastError             string
	Elapsed               time.Duration
}

// Watch receives each Status while a call waits; it may be nil.
type Watch func(Status)

// Deploy allocates a node for req, attaches its VIFs, deploys it with a config drive and waits
// until it is active. A failure before the deploy starts undoes what was done; a failed deploy
// leaves the node as it is (deploy failed), for inspection, and returns an error with its
// last_error.
func Deploy(ctx context.Context, c Client, req Request, watch Watch) (Instance, error) {
	if err := req.Validate(); err != nil {
		return Instance{}, err
	}
	start := time.Now()
	alloc, err := allocate(ctx, c, req)
	if err != nil {
		return Instance{}, err
	}
	inst := Instance{Node: alloc.Node, Allocation: alloc.UUID}
	undo := func(cause error) error {
		// Best effort on a fresh context: the caller's may be what failed.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for _, nic := range inst.NICs {
			_ = c.Do(cctx, http.MethodDelete, "/v1/nodes/"+inst.Node+"/vifs/"+url.PathEscape(nic.VIF), nil, nil)
		}
		_ = c.Do(cctx, http.MethodDelete, "/v1/allocations/"+alloc.UUID, nil, nil)
		return cause
	}
	var node nodeView
	if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+inst.Node, nil, &node); err != nil {
		return inst, undo(fmt.Errorf("read node %s: %w", inst.Node, err))
	}
	inst.NodeName = node.Name
	nets := req.Networks
	if len(nets) == 0 {
		nets = []Network{{}}
	}
	for i, n := range nets {
		if n.VIF == "" {
			n.VIF = fmt.Sprintf("%s-%d-%s", safeName(req.Hostname), i, randomHex(4))
			nets[i] = n
		}
		if err := c.Do(ctx, http.MethodPost, "/v1/nodes/"+inst.Node+"/vifs", map[string]any{"id": n.VIF}, nil); err != nil {
			return inst, undo(fmt.Errorf("attach VIF %s to node %s: %w", n.VIF, nodeLabel(inst), err))
		}
		inst.NICs = append(inst.NICs, NIC{VIF: n.VIF, Address: "dhcp"})
		if n.Address.IsValid() {
			inst.NICs[i].Address = n.Address.String()
		}
	}
	if err := bindings(ctx, c, inst.Node, inst.NICs); err != nil {
		return inst, undo(err)
	}
	patch := instanceInfo(req)
	if err := c.Do(ctx, http.MethodPatch, "/v1/nodes/"+inst.Node, patch, nil); err != nil {
		return inst, undo(fmt.Errorf("set the instance information of node %s: %w", nodeLabel(inst), err))
	}
	body := map[string]any{"target": "active", "configdrive": configDrive(req, inst, nets)}
	if err := c.Do(ctx, http.MethodPut, "/v1/nodes/"+inst.Node+"/states/provision", body, nil); err != nil {
		clear := []api.PatchOp{{Op: "remove", Path: "/instance_info"}}
		_ = c.Do(context.WithoutCancel(ctx), http.MethodPatch, "/v1/nodes/"+inst.Node, clear, nil)
		return inst, undo(fmt.Errorf("deploy node %s: %w", nodeLabel(inst), err))
	}
	st, err := waitFor(ctx, c, inst.Node, req.poll(), start, watch, "active")
	inst.ProvisionState = st.ProvisionState
	if err != nil {
		return inst, err
	}
	return inst, nil
}

// Undeploy takes node's instance down: it tears the node down (cleaning runs when enabled),
// waits until it is available again, then detaches its VIFs and removes an allocation that is
// still there.
func Undeploy(ctx context.Context, c Client, node string, poll time.Duration, watch Watch) error {
	if poll <= 0 {
		poll = time.Second
	}
	start := time.Now()
	var n nodeView
	if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+url.PathEscape(node), nil, &n); err != nil {
		return fmt.Errorf("read node %s: %w", node, err)
	}
	if n.ProvisionState != "available" {
		if err := c.Do(ctx, http.MethodPut, "/v1/nodes/"+n.UUID+"/states/provision", map[string]any{"target": "deleted"}, nil); err != nil {
			return fmt.Errorf("undeploy node %s: %w", node, err)
		}
		if _, err := waitFor(ctx, c, n.UUID, poll, start, watch, "available", "manageable"); err != nil {
			return err
		}
	}
	var vifs struct {
		VIFs []struct {
			ID string `json:"id"`
		} `json:"vifs"`
	}
	if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+n.UUID+"/vifs", nil, &vifs); err != nil {
		return fmt.Errorf("list the VIFs of node %s: %w", node, err)
	}
	for _, v := range vifs.VIFs {
		if err := c.Do(ctx, http.MethodDelete, "/v1/nodes/"+n.UUID+"/vifs/"+url.PathEscape(v.ID), nil, nil); err != nil {
			return fmt.Errorf("detach VIF %s from node %s: %w", v.ID, node, err)
		}
	}
	err := c.Do(ctx, http.MethodDelete, "/v1/nodes/"+n.UUID+"/allocation", nil, nil)
	if err != nil && !api.IsStatus(err, http.StatusNotFound) {
		return fmt.Errorf("remove the allocation of node %s: %w", node, err)
	}
	return nil
}

// Validate checks the request before anything is asked of the API.
func (r Request) Validate() error {
	var missing []string
	if r.ResourceClass == "" {
		missing = append(missing, "a resource class")
	}
	if r.Image == "" {
		missing = append(missing, "an image URL")
	}
	if r.Hostname == "" {
		missing = append(missing, "a hostname")
	}
	if len(missing) > 0 {
		return fmt.Errorf("a deploy needs %s", strings.Join(missing, ", "))
	}
	if !validHostname(r.Hostname) {
		return fmt.Errorf("hostname %q is not a valid host name (letters, digits, '-' and '.', labels of at most 63 characters)", r.Hostname)
	}
	if u, err := url.Parse(r.Image); err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file" && u.Scheme != "oci") {
		return fmt.Errorf("image %q is not an http, https, file or oci URL", r.Image)
	}
	if r.DownloadSource != "" && r.DownloadSource != "http" && r.DownloadSource != "local" {
		return fmt.Errorf("image download source %q is not http or local", r.DownloadSource)
	}
	for _, k := range r.SSHKeys {
		if f := strings.Fields(k); len(f) < 2 || !strings.HasPrefix(f[0], "ssh-") && !strings.HasPrefix(f[0], "ecdsa-") && !strings.HasPrefix(f[0], "sk-") {
			return fmt.Errorf("%q does not look like an SSH public key (type, key, comment)", short(k))
		}
	}
	return nil
}

func (r Request) poll() time.Duration {
	if r.Poll > 0 {
		return r.Poll
	}
	return time.Second
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

type allocationView struct {
	UUID      string `json:"uuid"`
	Node      string `json:"node_uuid"`
	State     string `json:"state"`
	LastError string `json:"last_error"`
}

// allocate asks for an allocation and waits until the conductor has picked a node.
func allocate(ctx context.Context, c Client, req Request) (allocationView, error) {
	body := map[string]any{"resource_class": req.ResourceClass, "name": req.Hostname}
	if len(req.Traits) > 0 {
		body["traits"] = req.Traits
	}
	if len(req.Candidates) > 0 {
		body["candidate_nodes"] = req.Candidates
	}
	if len(req.Capabilities) > 0 {
		body["capabilities"] = req.Capabilities
	}
	if req.Owner != "" {
		body["owner"] = req.Owner
	}
	ac := c
	var a allocationView
	if err := ac.Do(ctx, http.MethodPost, "/v1/allocations", body, &a); err != nil {
		return a, fmt.Errorf("allocate a node of class %s: %w", req.ResourceClass, err)
	}
	tick := time.NewTicker(min(req.poll(), 250*time.Millisecond))
	defer tick.Stop()
	for a.State == "allocating" {
		select {
		case <-ctx.Done():
			_ = ac.Do(context.WithoutCancel(ctx), http.MethodDelete, "/v1/allocations/"+a.UUID, nil, nil)
			return a, fmt.Errorf("allocation %s: %w", a.UUID, ctx.Err())
		case <-tick.C:
		}
		if err := ac.Do(ctx, http.MethodGet, "/v1/allocations/"+a.UUID, nil, &a); err != nil {
			return a, fmt.Errorf("read allocation %s: %w", a.UUID, err)
		}
	}
	if a.State != "active" {
		_ = ac.Do(context.WithoutCancel(ctx), http.MethodDelete, "/v1/allocations/"+a.UUID, nil, nil)
		return a, fmt.Errorf("no node for %s: allocation %s is %s: %s", req.Hostname, a.UUID, a.State, a.LastError)
	}
	return a, nil
}

// bindings finds the port (or portgroup) each attached VIF landed on, for its MAC address.
func bindings(ctx context.Context, c Client, node string, nics []NIC) error {
	for _, coll := range []string{"ports", "portgroups"} {
		var page map[string][]struct {
			UUID         string         `json:"uuid"`
			Address      string         `json:"address"`
			InternalInfo map[string]any `json:"internal_info"`
		}
		q := url.Values{"node": {node}, "detail": {"True"}}
		if err := c.Do(ctx, http.MethodGet, "/v1/"+coll+"?"+q.Encode(), nil, &page); err != nil {
			return fmt.Errorf("list the %s of node %s: %w", coll, node, err)
		}
		for _, p := range page[coll] {
			vif, _ := p.InternalInfo["tenant_vif_port_id"].(string)
			for i := range nics {
				if nics[i].VIF == vif && vif != "" && nics[i].Port == "" {
					nics[i].Port, nics[i].MAC = p.UUID, p.Address
				}
			}
		}
	}
	return nil
}

// instanceInfo is the JSON PATCH that describes the image to the deploy.
func instanceInfo(req Request) []api.PatchOp {
	info := map[string]any{"image_source": req.Image}
	if req.DiskFormat != "" {
		info["image_disk_format"] = req.DiskFormat
	}
	if req.PullSecret != "" {
		info["image_pull_secret"] = req.PullSecret
	}
	if req.DownloadSource != "" {
		info["image_download_source"] = req.DownloadSource
	}
	if cs := req.Checksum; cs != "" {
		algo, hexsum, hasAlgo := strings.Cut(cs, ":")
		switch {
		case strings.HasPrefix(cs, "http://") || strings.HasPrefix(cs, "https://") || strings.HasPrefix(cs, "file://"):
			info["image_checksum"] = cs
		case hasAlgo:
			info["image_os_hash_algo"], info["image_os_hash_value"] = strings.ToLower(algo), strings.ToLower(hexsum)
		case len(cs) == 64:
			info["image_os_hash_algo"], info["image_os_hash_value"] = "sha256", strings.ToLower(cs)
		case len(cs) == 128:
			info["image_os_hash_algo"], info["image_os_hash_value"] = "sha512", strings.ToLower(cs)
		default:
			info["image_checksum"] = strings.ToLower(cs)
		}
	}
	if len(req.Traits) > 0 {
		info["traits"] = req.Traits
	}
	if len(req.Capabilities) > 0 {
		info["capabilities"] = req.Capabilities
	}
	keys := make([]string, 0, len(info))
	for k := range info {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ops := make([]api.PatchOp, 0, len(keys))
	for _, k := range keys {
		ops = append(ops, api.PatchOp{Op: "add", Path: "/instance_info/" + k, Value: info[k]})
	}
	return ops
}

// configDrive is the config drive in its object form: the conductor builds the ISO.
func configDrive(req Request, inst Instance, nets []Network) map[string]any {
	keys := map[string]string{}
	for i, k := range req.SSHKeys {
		name := fmt.Sprint(i)
		if f := strings.Fields(k); len(f) >= 3 {
			name = f[2]
		}
		if _, dup := keys[name]; dup {
			name = fmt.Sprintf("%s-%d", name, i)
		}
		keys[name] = strings.TrimSpace(k)
	}
	meta := map[string]any{
		"uuid": inst.Node, "name": req.Hostname, "hostname": req.Hostname,
		"public_keys": keys, "launch_index": 0, "availability_zone": "", "files": []any{},
		"meta": map[string]any{"allocation": inst.Allocation},
	}
	cd := map[string]any{"meta_data": meta, "network_data": networkData(inst.NICs, nets)}
	if req.UserData != nil {
		cd["user_data"] = string(req.UserData)
	}
	return cd
}

// networkData is OpenStack's network_data.json for the attached VIFs.
func networkData(nics []NIC, nets []Network) map[string]any {
	links, networks, services := []any{}, []any{}, []any{}
	for i, nic := range nics {
		link := "nic" + fmt.Sprint(i)
		links = append(links, map[string]any{"id": link, "type": "phy", "ethernet_mac_address": nic.MAC, "vif_id": nic.VIF})
		n := nets[i]
		net := map[string]any{"id": "network" + fmt.Sprint(i), "link": link, "network_id": nic.VIF, "type": "ipv4_dhcp"}
		if n.Address.IsValid() {
			typ := "ipv4"
			if n.Address.Addr().Is6() {
				typ = "ipv6"
			}
			net["type"] = typ
			net["ip_address"] = n.Address.Addr().String()
			net["netmask"] = netmask(n.Address)
			if n.Gateway.IsValid() {
				dst, mask := "0.0.0.0", "0.0.0.0"
				if typ == "ipv6" {
					dst, mask = "::", "::"
				}
				net["routes"] = []any{map[string]any{"network": dst, "netmask": mask, "gateway": n.Gateway.String()}}
			}
		}
		networks = append(networks, net)
		for _, d := range n.DNS {
			services = append(services, map[string]any{"type": "dns", "address": d.String()})
		}
	}
	return map[string]any{"links": links, "networks": networks, "services": services}
}

func netmask(p netip.Prefix) string {
	bits := p.Addr().BitLen()
	b := make([]byte, bits/8)
	for i := 0; i < p.Bits(); i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a.String()
}

type nodeView struct {
	UUID               string         `json:"uuid"`
	Name               string         `json:"name"`
	ProvisionState     string         `json:"provision_state"`
	TargetState        string         `json:"target_provision_state"`
	LastError          string         `json:"last_error"`
	DeployStep         map[string]any `json:"deploy_step"`
	CleanStep          map[string]any `json:"clean_step"`
	DriverInternalInfo map[string]any `json:"driver_internal_info"`
}

// terminal states in which waiting for another state is over.
var failed = map[string]bool{"deploy failed": true, "clean failed": true, "error": true, "inspect failed": true, "rescue failed": true}

// waitFor polls node until it reaches one of targets, fails, or ctx ends.
func waitFor(ctx context.Context, c Client, node string, poll time.Duration, start time.Time, watch Watch, targets ...string) (Status, error) {
	tick := time.NewTicker(poll)
	defer tick.Stop()
	var last Status
	for {
		var n nodeView
		if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+node, nil, &n); err != nil {
			return last, fmt.Errorf("read node %s: %w", node, err)
		}
		st := statusOf(n, start)
		if watch != nil {
			watch(st)
		}
		last = st
		for _, t := range targets {
			if st.ProvisionState == t && st.TargetState == "" {
				return st, nil
			}
		}
		if failed[st.ProvisionState] && st.TargetState == "" {
			return st, &FailedError{Node: node, State: st.ProvisionState, Reason: st.LastError}
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("waiting for node %s (%s): %w", node, st.ProvisionState, ctx.Err())
		case <-tick.C:
		}
	}
}

// FailedError is a node that ended in a failure state while a call waited.
type FailedError struct{ Node, State, Reason string }

func (e *FailedError) Error() string {
	return fmt.Sprintf("node %s is in %s: %s", e.Node, e.State, e.Reason)
}

// IsFailed reports whether err is a node that ended in a failure state.
func IsFailed(err error) bool {
	var f *FailedError
	return errors.As(err, &f)
}

func statusOf(n nodeView, start time.Time) Status {
	st := Status{Node: n.UUID, ProvisionState: n.ProvisionState, TargetState: n.TargetState, LastError: n.LastError,
		Elapsed: time.Since(start), BytesTotal: -1}
	step := n.DeployStep
	if len(step) == 0 {
		step = n.CleanStep
	}
	if len(step) > 0 {
		st.Step = fmt.Sprintf("%v.%v", step["interface"], step["step"])
	}
	if p, ok := n.DriverInternalInfo["ironwork_agent_progress"].(map[string]any); ok {
		if v, ok := p["bytes_done"].(float64); ok {
			st.BytesDone = int64(v)
		}
		if v, ok := p["bytes_total"].(float64); ok {
			st.BytesTotal = int64(v)
		}
	}
	return st
}

func nodeLabel(i Instance) string {
	if i.NodeName != "" {
		return i.NodeName
	}
	return i.Node
}

func safeName(h string) string {
	h, _, _ = strings.Cut(h, ".")
	return h
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func short(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
