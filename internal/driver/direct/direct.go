// Package direct is the direct deploy interface, Ironic's default: the node boots the deploy
// agent's ramdisk, the agent writes the image straight onto its disk and powers the node off,
// and the node boots the image from its disk. Cleaning runs the agent's clean steps the same
// way. Each stage is a step, so the node's deploy_step or clean_step shows where it is, and
// each wait for the agent ends in a heartbeat (or in the conductor's callback timeout).
// The package talks to the agent over its command API; hardware only through the node's
// boot, power and management interfaces.
package direct

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/configdrive"
	"github.com/ironwork/ironwork/internal/image"
)

// waitKey is the driver_internal_info key of the agent command a node waits for; only
// waitingFor, setWaitingFor and clearWaitingFor read and write it.
const waitKey = "ironwork_agent_command"

// agentCommand is the agent command a node waits for. ID is empty while the command is still
// to be sent (the agent did not answer); Step then says what to send at the next heartbeat.
type agentCommand struct {
	Name, ID string
	Step     conductor.Step
}

// waitingFor returns the agent command a node waits for, if any.
func waitingFor(n *ironwork.Node) (agentCommand, bool) {
	w, ok := n.DriverInternalInfo[waitKey].(map[string]any)
	if !ok {
		return agentCommand{}, false
	}
	var c agentCommand
	c.Name, _ = w["name"].(string)
	c.ID, _ = w["id"].(string)
	c.Step.Name, _ = w["step"].(string)
	if iface, _ := w["interface"].(string); iface != "" {
		c.Step.Interface = ironwork.InterfaceKind(iface)
	}
	switch p := w["priority"].(type) { // a number read back from the store, or one just set
	case float64:
		c.Step.Priority = int(p)
	case int:
		c.Step.Priority = p
	}
	c.Step.Args, _ = w["args"].(map[string]any)
	return c, true
}

func setWaitingFor(n *ironwork.Node, c agentCommand) {
	if n.DriverInternalInfo == nil {
		n.DriverInternalInfo = ironwork.JSONObject{}
	}
	w := map[string]any{"name": c.Name}
	if c.Step.Interface != "" {
		w["interface"] = string(c.Step.Interface)
	}
	if c.ID != "" {
		w["id"] = c.ID
	} else {
		w["step"], w["priority"], w["args"] = c.Step.Name, c.Step.Priority, c.Step.Args
	}
	n.DriverInternalInfo[waitKey] = w
}

func clearWaitingFor(n *ironwork.Node) { delete(n.DriverInternalInfo, waitKey) }

// Config tunes the interface.
type Config struct {
	// SoftPowerOffTimeout is how long the agent's own power off may take before the BMC
	// powers the node off (Ironic's [agent]post_deploy_get_power_state_retries x interval).
	SoftPowerOffTimeout time.Duration
	// EraseDevicesPriority is the priority of the erase_devices clean step; 0 (the default)
	// leaves it to manual cleaning, because zeroing whole disks takes hours.
	EraseDevicesPriority int
	// Dial opens connections to agents (the provisioning network's namespace, say); nil
	// means a plain dialer. The interface owns its HTTP transport: no connection is kept
	// between calls, so none outlives the agent it was opened to.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// ConnectTimeout bounds a connection to an agent; 0 means 10 s.
	ConnectTimeout time.Duration
	// CommandTimeout bounds one call to an agent, from connect to the answer's end
	// (Ironic's [agent]command_timeout); 0 means 60 s.
	CommandTimeout time.Duration
	// MaxCommandAttempts is how many times a call that got no answer is made (Ironic's
	// [agent]max_command_attempts); 0 means 3.
	MaxCommandAttempts int
	// CommandRetryInterval is the pause between those attempts; 0 means 2 s. (Ironic tries
	// again at once; a pause lets an agent that is restarting bind its port.)
	CommandRetryInterval time.Duration
	// ImageDownloadSource is the default of image_download_source (Ironic's
	// [agent]image_download_source): SourceHTTP (the default) or SourceLocal.
	ImageDownloadSource string
	// LocalImages serves images from the conductor (image_download_source local, file://
	// images); nil: this conductor cannot, and such nodes fail validation.
	LocalImages LocalImages
	// FileDirs are the directories file:// images and checksum files may come from
	// (Ironic's [conductor]file_url_allowed_paths).
	FileDirs []string
	// OCI resolves oci:// images; nil means a resolver speaking HTTPS with HTTPClient.
	OCI *image.OCIResolver
	// HTTPClient fetches checksum files and talks to registries; nil means a client with
	// a 60 s response-header timeout that honours the proxy environment.
	HTTPClient *http.Client
	// AgentRoots verifies agents that serve https without sending their own certificate
	// (Ironic's [agent]verify_ca as a path; ParseVerifyCA); nil means the system's roots.
	// AgentInsecure skips that verification (verify_ca = false). An agent that sent its
	// certificate (automatic TLS) is always held to exactly that certificate.
	AgentRoots    *x509.CertPool
	AgentInsecure bool
	// DefaultBootMode is the boot mode of nodes that do not say (bios or uefi): a partition
	// image's layout and boot loader depend on it.
	DefaultBootMode string

	verify verifyCA // from AgentRoots and AgentInsecure
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	if c.SoftPowerOffTimeout <= 0 {
		c.SoftPowerOffTimeout = 2 * time.Minute
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = 60 * time.Second
	}
	if c.MaxCommandAttempts <= 0 {
		c.MaxCommandAttempts = 3
	}
	if c.CommandRetryInterval <= 0 {
		c.CommandRetryInterval = 2 * time.Second
	}
	if c.ImageDownloadSource == "" {
		c.ImageDownloadSource = SourceHTTP
	}
	if c.HTTPClient == nil {
		c.HTTPClient = defaultHTTPClient()
	}
	c.verify = verifyCA{roots: c.AgentRoots, insecure: c.AgentInsecure}
	if c.OCI == nil {
		c.OCI = &image.OCIResolver{HTTPClient: c.HTTPClient}
	}
	return c
}

// Interface is the direct deploy interface.
type Interface struct {
	cfg   Config
	agent agentClient
	log   *slog.Logger
}

var (
	_ conductor.Deploy           = (*Interface)(nil)
	_ conductor.StepProvider     = (*Interface)(nil)
	_ conductor.StepRunner       = (*Interface)(nil)
	_ conductor.HeartbeatHandler = (*Interface)(nil)
	_ conductor.Validator        = (*Interface)(nil)
)

// New returns the direct deploy interface.
func New(cfg Config, log *slog.Logger) *Interface {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Interface{cfg: cfg, agent: newAgentClient(cfg, log), log: log}
}

// Steps implements conductor.StepProvider, with Ironic's priorities for the deploy steps.
func (d *Interface) Steps(kind conductor.StepKind) []conductor.Step {
	switch kind {
	case conductor.DeploySteps:
		return []conductor.Step{
			{Name: "deploy", Priority: 100},
			{Name: "write_image", Priority: 80},
			{Name: "prepare_instance_boot", Priority: 60},
			{Name: "tear_down_agent", Priority: 40},
			{Name: "boot_instance", Priority: 20},
		}
	case conductor.CleanSteps:
		return []conductor.Step{
			{Name: "boot_agent", Priority: 1000, Abortable: true, RequiresRamdisk: true},
			{Name: "erase_devices_metadata", Priority: 99, Abortable: true, RequiresRamdisk: true},
			{Name: "erase_devices", Priority: d.cfg.EraseDevicesPriority, Abortable: true, RequiresRamdisk: true},
			{Name: "tear_down_cleaning", Priority: 1},
		}
	}
	return nil
}

// Validate implements conductor.Validator: a deploy needs an image and its checksum.
func (d *Interface) Validate(_ context.Context, t *conductor.Task) error {
	ii := t.Node.InstanceInfo
	var missing []string
	s, _ := ii["image_source"].(string)
	if s == "" {
		missing = append(missing, "image_source")
	} else if err := d.validateImageSource(t.Node, s); err != nil {
		return err
	}
	algo, _ := ii["image_os_hash_algo"].(string)
	value, _ := ii["image_os_hash_value"].(string)
	if (algo == "") != (value == "") {
		return errors.New("instance_info.image_os_hash_algo and image_os_hash_value go together: give both or neither")
	}
	if c, _ := ii["image_checksum"].(string); c == "" && value == "" && !image.IsOCI(s) {
		missing = append(missing, "image_checksum (or image_os_hash_algo and image_os_hash_value)")
	}
	if err := validatePartition(ii); err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("some parameters were missing in node's instance_info: %s", strings.Join(missing, ", "))
	}
	return nil
}

func boot(t *conductor.Task) (conductor.Boot, error) {
	b, ok := t.Driver.Impl(ironwork.BootInterface).(conductor.Boot)
	if !ok {
		return nil, fmt.Errorf("the boot interface %q cannot boot a ramdisk", t.Node.Interfaces[ironwork.BootInterface])
	}
	return b, nil
}

// bootAgent boots the node into the agent's ramdisk and waits for the agent's heartbeat.
func (d *Interface) bootAgent(ctx context.Context, t *conductor.Task) (bool, error) {
	b, err := boot(t)
	if err != nil {
		return false, err
	}
	if t.FastTrack(ctx) {
		// Fast track: the agent left running by the last cleaning heartbeats and the node is
		// on: no power off, no ramdisk boot setup, no reboot; the next step uses the agent now.
		t.Log.Info("fast track: the deploy agent is up; no reboot", "state", t.Node.ProvisionState)
		return false, t.Save(ctx, clearWaitingFor)
	}
	if err := t.Save(ctx, func(n *ironwork.Node) {
		conductor.ForgetAgent(n)
		clearWaitingFor(n)
	}); err != nil {
		return false, err
	}
	if err := b.PrepareRamdisk(ctx, t); err != nil {
		return false, fmt.Errorf("prepare the ramdisk boot: %w", err)
	}
	target := ironwork.PowerOn
	if t.Node.PowerState == ironwork.PowerOn {
		target = ironwork.Rebooting
	}
	if err := t.SetPower(ctx, target); err != nil {
		return false, fmt.Errorf("boot the ramdisk: %w", err)
	}
	t.Log.Info("waiting for the deploy agent", "state", t.Node.ProvisionState)
	return true, nil
}

// Deploy implements conductor.Deploy: the deploy step boots the agent.
func (d *Interface) Deploy(ctx context.Context, t *conductor.Task) (bool, error) {
	return d.bootAgent(ctx, t)
}

// TearDown implements conductor.Deploy: the node ends powered off and no longer boots its
// instance; cleaning follows.
func (d *Interface) TearDown(ctx context.Context, t *conductor.Task) error {
	if err := t.SetPower(ctx, ironwork.PowerOff); err != nil {
		return err
	}
	if err := d.removeLocalImage(ctx, t.Node.UUID); err != nil {
		return err
	}
	b, err := boot(t)
	if err != nil {
		return err
	}
	return b.CleanUpInstance(ctx, t)
}

// agentOf returns the endpoint of the node's running agent.
func agentOf(t *conductor.Task) (endpoint, error) {
	ep := endpointOf(t)
	if ep.URL == "" {
		return endpoint{}, fmt.Errorf("no deploy agent is running on node %s (a manual clean with agent steps needs the deploy.boot_agent step first)", t.Node.UUID)
	}
	return ep, nil
}

// RunStep implements conductor.StepRunner.
func (d *Interface) RunStep(ctx context.Context, t *conductor.Task, step conductor.Step) (bool, error) {
	switch step.Name {
	case "boot_agent":
		return d.bootAgent(ctx, t)
	case "write_image", "erase_devices_metadata", "erase_devices":
		return d.start(ctx, t, step)
	case "prepare_instance_boot":
		return d.prepareInstanceBoot(ctx, t)
	case "tear_down_agent":
		if err := d.powerOffThroughAgent(ctx, t); err != nil {
			return false, err
		}
		return false, d.removeLocalImage(ctx, t.Node.UUID)
	case "boot_instance":
		if err := t.SetPower(ctx, ironwork.PowerOn); err != nil {
			return false, err
		}
		return false, t.Save(ctx, func(n *ironwork.Node) { conductor.ForgetAgent(n) })
	case "tear_down_cleaning":
		if t.FastTrack(ctx) {
			// Fast track: the node stays on in the agent, which keeps its token and heartbeats.
			t.Log.Info("fast track: the deploy agent stays up after cleaning")
			return false, nil
		}
		if err := t.SetPower(ctx, ironwork.PowerOff); err != nil {
			return false, err
		}
		b, err := boot(t)
		if err != nil {
			return false, err
		}
		if err := b.CleanUpRamdisk(ctx, t); err != nil {
			return false, err
		}
		return false, t.Save(ctx, func(n *ironwork.Node) { conductor.ForgetAgent(n) })
	}
	return false, fmt.Errorf("the direct deploy interface has no step %q", step.Name)
}

// command is the agent command that runs step, and its parameters.
func (d *Interface) command(ctx context.Context, t *conductor.Task, step conductor.Step) (string, map[string]any, error) {
	if step.Interface == ironwork.RAIDInterface {
		return raidCommand(t.Node, step)
	}
	switch step.Name {
	case "write_image":
		img, err := d.resolveImage(ctx, t.Node)
		if err != nil {
			return "", nil, err
		}
		params, err := imageParams(t.Node, img)
		if err == nil && isPartitionImage(t.Node.InstanceInfo) {
			partitionImageInfo(t.Node, params["image_info"].(map[string]any), d.cfg.DefaultBootMode)
		}
		return "standby.prepare_image", params, err
	case "prepare_instance_boot":
		return "image.install_bootloader", bootloaderParams(t.Node, d.cfg.DefaultBootMode), nil
	case "erase_devices_metadata", "erase_devices":
		// The agent keeps the node it is sent (IPA replaces its cached one): send what it reads,
		// root device hints among it, as Ironic does.
		n := t.Node
		return "clean.execute_clean_step", map[string]any{
			"step":  map[string]any{"interface": "deploy", "step": step.Name, "priority": step.Priority, "args": step.Args},
			"node":  map[string]any{"uuid": n.UUID, "properties": n.Properties, "instance_info": withoutSecrets(n.InstanceInfo)},
			"ports": []any{}}, nil
	}
	return "", nil, fmt.Errorf("the direct deploy interface has no agent command for step %q", step.Name)
}

// start sends the asynchronous command of step to the agent and waits for its end. An agent
// that does not answer is asked again at its next heartbeat: the step waits (and the
// callback timeout ends the wait if the agent is gone for good).
func (d *Interface) start(ctx context.Context, t *conductor.Task, step conductor.Step) (bool, error) {
	name, params, err := d.command(ctx, t, step)
	if err != nil {
		return false, err
	}
	ep, err := agentOf(t)
	if err != nil {
		return false, err
	}
	res, err := d.agent.run(ctx, ep, name, params, false)
	if errors.Is(err, conductor.ErrAgentUnreachable) {
		t.Log.Warn("the agent did not answer; sending the command at its next heartbeat", "command", name, "error", err)
		return true, t.Save(ctx, func(n *ironwork.Node) { setWaitingFor(n, agentCommand{Name: name, Step: step}) })
	}
	if err != nil {
		return false, err
	}
	return d.started(ctx, t, name, res)
}

// started records the command the node now waits for, or ends the step when the command
// ended already.
func (d *Interface) started(ctx context.Context, t *conductor.Task, name string, res api.CommandResult) (bool, error) {
	if res.CommandStatus == api.CommandFailed {
		return false, fmt.Errorf("agent command %s failed: %s", name, commandError(res))
	}
	t.Log.Info("agent command started", "command", name, "id", res.ID)
	if res.CommandStatus == api.CommandSucceeded {
		if err := finished(ctx, t, res); err != nil {
			return false, err
		}
		return false, t.Save(ctx, func(n *ironwork.Node) { clearWaitingFor(n) })
	}
	return true, t.Save(ctx, func(n *ironwork.Node) {
		setWaitingFor(n, agentCommand{Name: name, ID: res.ID})
	})
}

// Heartbeat implements conductor.HeartbeatHandler: the node goes on when its agent has just
// booted, or when the command it waits for has ended. A command the agent did not take
// (it did not answer) is sent now. An agent that does not answer is no failure: the error
// wraps conductor.ErrAgentUnreachable and the next heartbeat asks again.
func (d *Interface) Heartbeat(ctx context.Context, t *conductor.Task, hb conductor.Heartbeat) (bool, error) {
	w, ok := waitingFor(t.Node)
	if !ok {
		return true, nil // the agent is up: the next step can use it
	}
	name, id := w.Name, w.ID
	if id == "" {
		return d.resend(ctx, t, hb, w)
	}
	res, err := d.agent.status(ctx, heartbeatEndpoint(t, hb), id)
	if err != nil {
		return false, fmt.Errorf("agent command %s: %w", name, err)
	}
	switch res.CommandStatus {
	case api.CommandRunning:
		return false, nil
	case api.CommandFailed:
		return false, fmt.Errorf("agent command %s failed: %s", name, commandError(res))
	}
	t.Log.Info("agent command finished", "command", name, "id", id)
	if err := finished(ctx, t, res); err != nil {
		return false, err
	}
	return true, t.Save(ctx, func(n *ironwork.Node) { clearWaitingFor(n) })
}

// resend sends the command an unanswered start could not: unless the agent already runs
// (or ran) a command of that name, whose answer was what got lost.
func (d *Interface) resend(ctx context.Context, t *conductor.Task, hb conductor.Heartbeat, w agentCommand) (bool, error) {
	name := w.Name
	list, err := d.agent.commands(ctx, heartbeatEndpoint(t, hb))
	if err != nil {
		return false, fmt.Errorf("agent command %s: %w", name, err)
	}
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].CommandName == name {
			t.Log.Info("the agent took the command after all", "command", name, "id", list[i].ID)
			return d.startedAtHeartbeat(ctx, t, name, list[i])
		}
	}
	_, params, err := d.command(ctx, t, w.Step)
	if err != nil {
		return false, err
	}
	res, err := d.agent.run(ctx, heartbeatEndpoint(t, hb), name, params, false)
	if err != nil {
		return false, fmt.Errorf("agent command %s: %w", name, err)
	}
	return d.startedAtHeartbeat(ctx, t, name, res)
}

// startedAtHeartbeat is started for a heartbeat's answer: true means the step is done.
func (d *Interface) startedAtHeartbeat(ctx context.Context, t *conductor.Task, name string, res api.CommandResult) (bool, error) {
	waiting, err := d.started(ctx, t, name, res)
	return !waiting && err == nil, err
}

// powerOffThroughAgent asks the agent to power the node off from inside (so the OS flushes
// its disks), watches the BMC until the node is off, and powers it off through the BMC
// when the agent cannot or the time runs out.
func (d *Interface) powerOffThroughAgent(ctx context.Context, t *conductor.Task) error {
	ep, err := agentOf(t)
	if err == nil {
		if _, err = d.agent.run(ctx, ep, "standby.power_off", nil, false); err == nil {
			p, ok := t.Driver.Power()
			if ok {
				read := func() (ironwork.PowerState, error) { return p.PowerState(ctx, t) }
				if err = conductor.WaitForPower(ctx, read, ironwork.PowerOff, d.cfg.SoftPowerOffTimeout, time.Second); err == nil {
					return t.Save(ctx, func(n *ironwork.Node) { n.PowerState = ironwork.PowerOff })
				}
			}
		}
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	t.Log.Warn("the agent did not power the node off; powering off through the BMC", "error", err)
	return t.SetPower(ctx, ironwork.PowerOff)
}

// imageParams builds the agent's image_info and config drive from the node's instance_info
// and its resolved image.
func imageParams(n *ironwork.Node, img instanceImage) (map[string]any, error) {
	ii := n.InstanceInfo
	// IPA names its temporary file after the id: a URL's last element, as Ironic sends.
	info := map[string]any{
		"id": img.id, "urls": []string{img.url}, "image_type": "whole-disk", "disk_format": img.diskFormat,
		"container_format": "bare", "stream_raw_images": true, "node_uuid": n.UUID,
	}
	if algo, value, ok := strings.Cut(img.checksum, ":"); ok {
		// Resolved: always algo:hex, given as IPA reads os_hash_* (checksum too, for agents
		// that read only that).
		info["os_hash_algo"], info["os_hash_value"], info["checksum"] = algo, value, img.checksum
	} else {
		info["checksum"] = img.checksum
	}
	if img.auth != "" {
		info["image_request_authorization"] = authorizationParam(img.auth)
	}
	if hints, ok := n.Properties["root_device"].(map[string]any); ok {
		info["root_device"] = hints
	}
	params := map[string]any{"image_info": info}
	switch cd := ii["configdrive"].(type) {
	case nil:
	case string:
		params["configdrive"] = cd
	case map[string]any:
		// Set through instance_info rather than the provision call: build it here.
		s, err := configdrive.BuildEncoded(cd, n.UUID, n.Name)
		if err != nil {
			return nil, err
		}
		params["configdrive"] = s
	default:
		return nil, fmt.Errorf("configdrive must be a gzipped, base64-encoded ISO 9660 image, a URL or an object")
	}
	return params, nil
}

// withoutSecrets drops the instance_info keys the agent has no business seeing.
func withoutSecrets(o ironwork.JSONObject) ironwork.JSONObject {
	out := ironwork.JSONObject{}
	for k, v := range o {
		switch k {
		case "configdrive", "rescue_password", conductor.RescuePasswordHashKey, "image_pull_secret":
			continue
		}
		out[k] = v
	}
	return out
}
