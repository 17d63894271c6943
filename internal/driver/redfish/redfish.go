// Package redfish is the redfish hardware type's power and management interfaces: it drives a
// node's BMC through DMTF Redfish (ComputerSystem.Reset, the Boot override, boot mode), using
// gofish as the protocol client. It reads Ironic's driver_info keys (redfish_address,
// redfish_system_id, redfish_username, redfish_password, redfish_verify_ca) and, since BMCs
// report changes late, re-reads the power state after every action until it matches.
package redfish

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/schemas"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// Interface implements the redfish power and management interfaces.
type Interface struct {
	// PollInterval is how often the power state is re-read after an action (default 1 s).
	PollInterval time.Duration
	// RequestTimeout bounds one HTTP request to the BMC, its connection attempts included
	// (default 30 s).
	RequestTimeout time.Duration
	// ConnectionAttempts is how many times a request is tried when no connection to the BMC
	// can be made (default 5), ConnectionRetryInterval the pause between two tries (default
	// 4 s): Ironic's [redfish]connection_attempts and connection_retry_interval. A BMC whose
	// web server restarts is waited for; a request that reached the BMC is never sent twice.
	ConnectionAttempts      int
	ConnectionRetryInterval time.Duration
	// DefaultBootMode is the boot mode (bios or uefi) of a node that does not say, as
	// Ironic's [deploy]default_boot_mode (default uefi). Every boot device change sends the
	// node's boot mode as BootSourceOverrideMode.
	DefaultBootMode string
}

// retryDial is an http.RoundTripper that tries a request again when no connection could be
// made (the request never left this host, so even a POST is safe to send again).
type retryDial struct {
	next     http.RoundTripper
	attempts int
	interval time.Duration
}

// CloseIdleConnections closes the kept-alive connections of the transport below, as
// http.Client.CloseIdleConnections expects of a transport.
func (r retryDial) CloseIdleConnections() {
	if c, ok := r.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (r retryDial) RoundTrip(req *http.Request) (*http.Response, error) {
	for i := 1; ; i++ {
		resp, err := r.next.RoundTrip(req)
		var op *net.OpError
		if err == nil || i >= r.attempts || !errors.As(err, &op) || op.Op != "dial" {
			return resp, err
		}
		if req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return nil, err
			}
			body, gerr := req.GetBody()
			if gerr != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
		select {
		case <-req.Context().Done():
			return nil, err
		case <-time.After(r.interval):
		}
	}
}

var (
	_ conductor.Power            = Interface{}
	_ conductor.Management       = Interface{}
	_ conductor.Validator        = Interface{}
	_ conductor.Rebooter         = Interface{}
	_ conductor.SoftPower        = Interface{}
	_ conductor.NMIInjector      = Interface{}
	_ conductor.BootModeSetter   = Interface{}
	_ conductor.SecureBootSetter = Interface{}
	_ conductor.VirtualMedia     = Interface{}
)

// info is a node's Redfish settings, from driver_info.
type info struct {
	address  string // scheme://host[:port]
	systemID string // path of the ComputerSystem, may be empty
	username string
	password string
	verify   bool
	caFile   string
}

// parseInfo reads and checks a node's driver_info, naming every missing or malformed key.
func parseInfo(n *ironwork.Node) (info, error) {
	di := n.DriverInfo
	str := func(k string) string { s, _ := di[k].(string); return strings.TrimSpace(s) }
	var inf info
	raw := str("redfish_address")
	if raw == "" {
		return inf, ironwork.Errorf(ironwork.EINVALID, "Missing the following Redfish properties in node %s driver_info: redfish_address", n.UUID)
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return inf, ironwork.Errorf(ironwork.EINVALID, "Invalid Redfish address %q in node %s driver_info: use http(s)://host[:port]", str("redfish_address"), n.UUID)
	}
	inf.address = u.Scheme + "://" + u.Host
	inf.systemID = str("redfish_system_id")
	if inf.systemID != "" && !strings.HasPrefix(inf.systemID, "/") {
		return inf, ironwork.Errorf(ironwork.EINVALID, "Invalid redfish_system_id %q in node %s driver_info: it is a path such as /redfish/v1/Systems/1", inf.systemID, n.UUID)
	}
	inf.username, inf.password = str("redfish_username"), str("redfish_password")
	inf.verify = true
	switch v := di["redfish_verify_ca"].(type) {
	case nil:
	case bool:
		inf.verify = v
	case string:
		if b, err := strconv.ParseBool(v); err == nil {
			inf.verify = b
		} else if _, err := os.Stat(v); err == nil {
			inf.caFile = v
		} else {
			return inf, ironwork.Errorf(ironwork.EINVALID, "Invalid redfish_verify_ca %q in node %s driver_info: use true, false or the path of a CA bundle that exists", v, n.UUID)
		}
	default:
		return inf, ironwork.Errorf(ironwork.EINVALID, "Invalid redfish_verify_ca in node %s driver_info: use true, false or a path", n.UUID)
	}
	return inf, nil
}

func (d Interface) pollInterval() time.Duration {
	if d.PollInterval > 0 {
		return d.PollInterval
	}
	return time.Second
}

func (d Interface) httpClient(inf info) (*http.Client, error) {
	timeout := d.RequestTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: !inf.verify} //nolint:gosec // the operator's choice, redfish_verify_ca=false
	if inf.caFile != "" {
		pem, err := os.ReadFile(inf.caFile)
		if err != nil {
			return nil, fmt.Errorf("read redfish_verify_ca %s: %w", inf.caFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redfish_verify_ca %s holds no PEM certificate", inf.caFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	attempts, interval := d.ConnectionAttempts, d.ConnectionRetryInterval
	if attempts <= 0 {
		attempts = 5
	}
	if interval <= 0 {
		interval = 4 * time.Second
	}
	return &http.Client{Timeout: timeout, Transport: retryDial{next: tr, attempts: attempts, interval: interval}}, nil
}

// system connects to the node's BMC and returns its ComputerSystem; the caller calls done.
func (d Interface) system(ctx context.Context, t *conductor.Task) (*schemas.ComputerSystem, func(), error) {
	inf, err := parseInfo(t.Node)
	if err != nil {
		return nil, nil, err
	}
	hc, err := d.httpClient(inf)
	if err != nil {
		return nil, nil, err
	}
	c, err := gofish.ConnectContext(ctx, gofish.ClientConfig{Endpoint: inf.address, Username: inf.username,
		Password: inf.password, HTTPClient: hc, BasicAuth: true, Insecure: !inf.verify})
	if err != nil {
		hc.CloseIdleConnections()
		return nil, nil, fmt.Errorf("connect to Redfish service %s: %w", inf.address, err)
	}
	// Each operation has a transport of its own: its kept-alive connection is closed with it,
	// or a fleet's power sync would leave one open socket per BMC for 90 s (both ends).
	done := func() { c.Logout(); hc.CloseIdleConnections() }
	if inf.systemID != "" {
		sys, err := schemas.GetComputerSystem(c, inf.systemID)
		if err != nil {
			done()
			return nil, nil, fmt.Errorf("get Redfish system %s at %s: %w", inf.systemID, inf.address, err)
		}
		return sys, done, nil
	}
	systems, err := c.GetService().Systems()
	if err != nil {
		done()
		return nil, nil, fmt.Errorf("list Redfish systems at %s: %w", inf.address, err)
	}
	if len(systems) != 1 {
		done()
		return nil, nil, ironwork.Errorf(ironwork.EINVALID, "The Redfish service at %s has %d systems: set redfish_system_id in node %s driver_info", inf.address, len(systems), t.Node.UUID)
	}
	return systems[0], done, nil
}

// Validate implements conductor.Validator: driver_info is complete and well formed.
func (Interface) Validate(_ context.Context, t *conductor.Task) error {
	_, err := parseInfo(t.Node)
	return err
}

func powerOf(p schemas.PowerState) (ironwork.PowerState, error) {
	switch p {
	case schemas.OnPowerState, schemas.PoweringOnPowerState:
		return ironwork.PowerOn, nil
	case schemas.OffPowerState, schemas.PoweringOffPowerState:
		return ironwork.PowerOff, nil
	}
	return ironwork.PowerError, fmt.Errorf("the BMC reports an unknown power state %q", p)
}

// PowerState implements conductor.Power.
func (d Interface) PowerState(ctx context.Context, t *conductor.Task) (ironwork.PowerState, error) {
	sys, done, err := d.system(ctx, t)
	if err != nil {
		return "", err
	}
	defer done()
	return powerOf(sys.PowerState)
}

// reset sends a ComputerSystem.Reset and waits until the system reports want.
func (d Interface) reset(ctx context.Context, t *conductor.Task, rt schemas.ResetType, want ironwork.PowerState, timeout time.Duration) error {
	sys, done, err := d.system(ctx, t)
	if err != nil {
		return err
	}
	defer done()
	tmi, err := sys.Reset(rt)
	if err != nil {
		return fmt.Errorf("Redfish reset %s: %w", rt, err)
	}
	if tmi != nil && tmi.TaskMonitor != "" {
		if err := d.waitTask(ctx, sys, tmi, timeout); err != nil {
			return fmt.Errorf("Redfish reset %s: %w", rt, err)
		}
	}
	if want == "" {
		return nil
	}
	return d.waitFor(ctx, sys, want, timeout)
}

// waitTask polls the task monitor of an asynchronous action until the task ends, and fails
// when it ends in error.
func (d Interface) waitTask(ctx context.Context, sys *schemas.ComputerSystem, tmi *schemas.TaskMonitorInfo, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = time.Minute
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := schemas.WaitForTaskMonitor(tctx, sys.GetClient(), d.pollInterval(), tmi, nil)
	if err != nil {
		return fmt.Errorf("task %s did not finish within %s: %w", tmi.TaskMonitor, timeout, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return fmt.Errorf("task %s: HTTP %d", tmi.TaskMonitor, resp.StatusCode)
	}
	var t struct {
		TaskState string
		Messages  []struct{ Message string }
	}
	if json.NewDecoder(resp.Body).Decode(&t) == nil {
		switch schemas.TaskState(t.TaskState) {
		case schemas.ExceptionTaskState, schemas.KilledTaskState, schemas.CancelledTaskState:
			var msgs []string
			for _, m := range t.Messages {
				msgs = append(msgs, m.Message)
			}
			return fmt.Errorf("task %s ended in %s: %s", tmi.TaskMonitor, t.TaskState, strings.Join(msgs, "; "))
		}
	}
	return nil
}

// waitFor re-reads the system until its power state is want; BMCs apply resets late.
func (d Interface) waitFor(ctx context.Context, sys *schemas.ComputerSystem, want ironwork.PowerState, timeout time.Duration) error {
	return conductor.WaitForPower(ctx, func() (ironwork.PowerState, error) {
		fresh, err := schemas.GetComputerSystem(sys.GetClient(), sys.ODataID)
		if err != nil {
			return "", err
		}
		return powerOf(fresh.PowerState)
	}, want, timeout, d.pollInterval())
}

// SetPowerState implements conductor.Power.
func (d Interface) SetPowerState(ctx context.Context, t *conductor.Task, target ironwork.PowerState, timeout time.Duration) error {
	switch target {
	case ironwork.PowerOn:
		return d.reset(ctx, t, schemas.OnResetType, ironwork.PowerOn, timeout)
	case ironwork.PowerOff:
		return d.reset(ctx, t, schemas.ForceOffResetType, ironwork.PowerOff, timeout)
	}
	return ironwork.Errorf(ironwork.EINVALID, "the redfish power interface cannot set power state %q", target)
}

// Reboot implements conductor.Rebooter: a node that is off is powered on.
func (d Interface) Reboot(ctx context.Context, t *conductor.Task, soft bool, timeout time.Duration) error {
	st, err := d.PowerState(ctx, t)
	if err != nil {
		return err
	}
	if st == ironwork.PowerOff {
		return d.reset(ctx, t, schemas.OnResetType, ironwork.PowerOn, timeout)
	}
	rt := schemas.ForceRestartResetType
	if soft {
		rt = schemas.GracefulRestartResetType
	}
	return d.reset(ctx, t, rt, ironwork.PowerOn, timeout)
}

// SoftPowerOff implements conductor.SoftPower.
func (d Interface) SoftPowerOff(ctx context.Context, t *conductor.Task, timeout time.Duration) error {
	return d.reset(ctx, t, schemas.GracefulShutdownResetType, ironwork.PowerOff, timeout)
}

// InjectNMI implements conductor.NMIInjector.
func (d Interface) InjectNMI(ctx context.Context, t *conductor.Task) error {
	return d.reset(ctx, t, schemas.NmiResetType, "", 0)
}

var toRedfish = map[string]schemas.BootSource{
	conductor.BootPXE: schemas.PxeBootSource, conductor.BootDisk: schemas.HddBootSource,
	conductor.BootCDROM: schemas.CdBootSource, conductor.BootBIOS: schemas.BiosSetupBootSource,
	conductor.BootUEFIHTTP: schemas.UefiHTTPBootSource, conductor.BootUSB: schemas.UsbBootSource,
}

// BootDevice implements conductor.Management.
func (d Interface) BootDevice(ctx context.Context, t *conductor.Task) (conductor.BootDevice, error) {
	sys, done, err := d.system(ctx, t)
	if err != nil {
		return conductor.BootDevice{}, err
	}
	defer done()
	out := conductor.BootDevice{Persistent: sys.Boot.BootSourceOverrideEnabled == schemas.ContinuousBootSourceOverrideEnabled}
	for dev, src := range toRedfish {
		if sys.Boot.BootSourceOverrideTarget == src {
			out.Device = dev
		}
	}
	if out.Device == "" || sys.Boot.BootSourceOverrideEnabled == schemas.DisabledBootSourceOverrideEnabled {
		out.Device = conductor.BootDisk // no override: the system boots from its disk
	}
	return out, nil
}

// SupportedBootDevices implements conductor.Management.
func (Interface) SupportedBootDevices(context.Context, *conductor.Task) ([]string, error) {
	return []string{conductor.BootPXE, conductor.BootDisk, conductor.BootCDROM, conductor.BootBIOS, conductor.BootUEFIHTTP}, nil
}

// SetBootDevice implements conductor.Management.
func (d Interface) SetBootDevice(ctx context.Context, t *conductor.Task, dev conductor.BootDevice) error {
	src, ok := toRedfish[dev.Device]
	if !ok {
		return ironwork.Errorf(ironwork.EINVALID, "the redfish management interface cannot boot from %q", dev.Device)
	}
	sys, done, err := d.system(ctx, t)
	if err != nil {
		return err
	}
	defer done()
	enabled := schemas.OnceBootSourceOverrideEnabled
	if dev.Persistent {
		enabled = schemas.ContinuousBootSourceOverrideEnabled
	}
	mode := d.bootMode(t.Node)
	b := &schemas.Boot{BootSourceOverrideTarget: src, BootSourceOverrideEnabled: enabled, BootSourceOverrideMode: bootModeOf(mode)}
	if err := sys.SetBoot(b); err != nil {
		return fmt.Errorf("set Redfish boot override to %s (%s): %w", src, b.BootSourceOverrideMode, err)
	}
	return nil
}

// bootMode is the mode the node is to boot in (ironwork.ResolveBootMode).
func (d Interface) bootMode(n *ironwork.Node) string {
	def := d.DefaultBootMode
	if def == "" {
		def = ironwork.BootModeUEFI
	}
	return ironwork.ResolveBootMode(n, def)
}

func bootModeOf(mode string) schemas.BootSourceOverrideMode {
	if mode == ironwork.BootModeBIOS {
		return schemas.LegacyBootSourceOverrideMode
	}
	return schemas.UEFIBootSourceOverrideMode
}

// SetBootMode implements conductor.BootModeSetter.
func (d Interface) SetBootMode(ctx context.Context, t *conductor.Task, mode string) error {
	sys, done, err := d.system(ctx, t)
	if err != nil {
		return err
	}
	defer done()
	b := &schemas.Boot{BootSourceOverrideMode: bootModeOf(mode), BootSourceOverrideTarget: sys.Boot.BootSourceOverrideTarget,
		BootSourceOverrideEnabled: sys.Boot.BootSourceOverrideEnabled}
	if err := sys.SetBoot(b); err != nil {
		return fmt.Errorf("set Redfish boot mode %s: %w", mode, err)
	}
	return nil
}

// SetSecureBoot implements conductor.SecureBootSetter.
func (d Interface) SetSecureBoot(ctx context.Context, t *conductor.Task, on bool) error {
	sys, done, err := d.system(ctx, t)
	if err != nil {
		return err
	}
	defer done()
	sb, err := sys.SecureBoot()
	if err != nil || sb == nil {
		return errors.Join(ironwork.Errorf(ironwork.EINVALID, "the BMC offers no SecureBoot resource"), err)
	}
	sb.SecureBootEnable = on
	if err := sb.Update(); err != nil {
		return fmt.Errorf("set Redfish secure boot %v: %w", on, err)
	}
	return nil
}

// cdrom finds the virtual drive boot ISOs go into: the managers' CD or DVD drive, or, when
// the BMC has none, its USB stick. It returns the drive and the boot device that boots it
// (conductor.BootCDROM or conductor.BootUSB).
func cdrom(sys *schemas.ComputerSystem) (*schemas.VirtualMedia, string, error) {
	managers, err := sys.ManagedBy()
	if err != nil {
		return nil, "", fmt.Errorf("read the managers of Redfish system %s: %w", sys.ODataID, err)
	}
	var usb *schemas.VirtualMedia
	for _, m := range managers {
		media, err := m.VirtualMedia()
		if err != nil {
			continue
		}
		for _, vm := range media {
			for _, mt := range vm.MediaTypes {
				switch {
				case mt == schemas.CDVirtualMediaType || mt == schemas.DVDVirtualMediaType:
					return vm, conductor.BootCDROM, nil
				case mt == schemas.USBStickVirtualMediaType && usb == nil:
					usb = vm
				}
			}
		}
	}
	if usb != nil {
		return usb, conductor.BootUSB, nil
	}
	return nil, "", ironwork.Errorf(ironwork.EINVALID, "the BMC of Redfish system %s offers no virtual CD, DVD or USB stick drive", sys.ODataID)
}

// VirtualMediaBootDevice says which boot device boots what InsertVirtualMedia inserts:
// conductor.BootCDROM, or conductor.BootUSB on a BMC whose only drive is a USB stick.
func (d Interface) VirtualMediaBootDevice(ctx context.Context, t *conductor.Task) (string, error) {
	sys, done, err := d.system(ctx, t)
	if err != nil {
		return "", err
	}
	defer done()
	_, dev, err := cdrom(sys)
	return dev, err
}

// InsertVirtualMedia implements conductor.VirtualMedia: a drive that holds another image is
// ejected first, as Redfish requires.
func (d Interface) InsertVirtualMedia(ctx context.Context, t *conductor.Task, image string) error {
	sys, done, err := d.system(ctx, t)
	if err != nil {
		return err
	}
	defer done()
	cd, _, err := cdrom(sys)
	if err != nil {
		return err
	}
	if cd.Inserted != nil && *cd.Inserted {
		if tmi, err := cd.EjectMedia(); err != nil {
			return fmt.Errorf("eject %s from %s: %w", cd.Image, cd.ODataID, err)
		} else if tmi != nil && tmi.TaskMonitor != "" {
			if err := d.waitTask(ctx, sys, tmi, time.Minute); err != nil {
				return fmt.Errorf("eject from %s: %w", cd.ODataID, err)
			}
		}
	}
	yes := true
	tmi, err := cd.InsertMedia(&schemas.VirtualMediaInsertMediaParameters{Image: image, Inserted: &yes, WriteProtected: &yes})
	if err != nil {
		return fmt.Errorf("insert %s into %s: %w", image, cd.ODataID, err)
	}
	if tmi != nil && tmi.TaskMonitor != "" {
		if err := d.waitTask(ctx, sys, tmi, time.Minute); err != nil {
			return fmt.Errorf("insert into %s: %w", cd.ODataID, err)
		}
	}
	return nil
}

// EjectVirtualMedia implements conductor.VirtualMedia.
func (d Interface) EjectVirtualMedia(ctx context.Context, t *conductor.Task) error {
	sys, done, err := d.system(ctx, t)
	if err != nil {
		return err
	}
	defer done()
	cd, _, err := cdrom(sys)
	if err != nil {
		return err
	}
	if cd.Inserted == nil || !*cd.Inserted {
		return nil
	}
	tmi, err := cd.EjectMedia()
	if err != nil {
		return fmt.Errorf("eject %s from %s: %w", cd.Image, cd.ODataID, err)
	}
	if tmi != nil && tmi.TaskMonitor != "" {
		return d.waitTask(ctx, sys, tmi, time.Minute)
	}
	return nil
}

var _ conductor.VirtualMediaLister = Interface{}

// ListVirtualMedia implements conductor.VirtualMediaLister: every virtual drive of the
// system's managers.
func (d Interface) ListVirtualMedia(ctx context.Context, t *conductor.Task) ([]conductor.VirtualMediaDevice, error) {
	sys, done, err := d.system(ctx, t)
	if err != nil {
		return nil, err
	}
	defer done()
	managers, err := sys.ManagedBy()
	if err != nil {
		return nil, fmt.Errorf("read the managers of Redfish system %s: %w", sys.ODataID, err)
	}
	out := []conductor.VirtualMediaDevice{}
	for _, m := range managers {
		media, err := m.VirtualMedia()
		if err != nil {
			continue
		}
		for _, vm := range media {
			dev := conductor.VirtualMediaDevice{MediaTypes: []string{}, Inserted: vm.Inserted != nil && *vm.Inserted, Image: vm.Image}
			for _, mt := range vm.MediaTypes {
				dev.MediaTypes = append(dev.MediaTypes, string(mt))
			}
			out = append(out, dev)
		}
	}
	return out, nil
}
