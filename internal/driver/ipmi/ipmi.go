// Package ipmi is the ipmi hardware type's power and management interfaces ("ipmitool" in
// Ironic's names): it drives a node's BMC over IPMI 2.0 (RMCP+, lanplus) with the native client
// of github.com/bougou/go-ipmi, never by running ipmitool. It reads Ironic's driver_info keys
// (ipmi_address, ipmi_port, ipmi_username, ipmi_password, ipmi_cipher_suite, ipmi_priv_level,
// ipmi_bridging) and re-reads the chassis status after every power action until it matches.
package ipmi

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/chassis"
	"github.com/bougou/go-ipmi/pkg/command/transport"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// Interface implements the ipmitool power and management interfaces.
type Interface struct {
	// CommandTimeout bounds one attempt of an IPMI request (default 3 s); a request on an
	// open session that gets no answer is sent Retries more times (default 2).
	CommandTimeout time.Duration
	Retries        int
	// RetryTimeout is how long a request to a BMC that does not answer is retried, as
	// Ironic's [ipmi]command_retry_timeout (default 60 s): a BMC that is silent for 30 s
	// (rebooting, a lost link) delays the operation instead of failing it. An answer that
	// is an error (a wrong password, an unsupported cipher suite) fails at once.
	RetryTimeout time.Duration
	// PollInterval is how often the chassis status is re-read after an action (default 1 s).
	PollInterval time.Duration
	// Sessions, when set (see NewSessions), keeps RMCP+ sessions open between operations on
	// the same BMC, sparing a handshake per request; nil opens one session per operation.
	Sessions *Sessions
}

// Sessions is a cache of open RMCP+ sessions, one per BMC and credentials. Operations on one
// BMC take turns on its session; a session idle for longer than MaxIdle is closed.
type Sessions struct {
	MaxIdle time.Duration
	mu      sync.Mutex
	open    map[string]*session
	swept   time.Time // when idle sessions were last looked for
}

type session struct {
	mu       sync.Mutex // one operation at a time on a session
	c        *bmcSession
	lastUsed time.Time
	gone     bool // swept out of the cache: a caller that waited for mu takes a new entry
}

// keepAlive is go-ipmi's keepalive period: an open client sends Get Session Info on this tick,
// counted from the moment it connected, from a goroutine of its own.
const keepAlive = time.Duration(client.DefaultKeepAliveIntervalSec) * time.Second

// bmcSession is an open RMCP+ session, when it opened, and how long one request on it may
// take with its retries.
type bmcSession struct {
	c      *client.Client
	opened time.Time
	busy   time.Duration
}

// closeDelay says how long to wait before closing a session opened sinceOpen ago so that the
// close does not meet the client's own keepalive request, which fires every keepAlive and
// lasts at most busy. go-ipmi v0.9.1 closes its UDP socket without waiting for a keepalive
// request that has just started, whose goroutine then writes to a nil connection and takes
// the whole process down (seen once in the lab, under load).
func closeDelay(sinceOpen, busy time.Duration) time.Duration {
	const margin = time.Second // a late ticker or a slow scheduler
	if busy+2*margin >= keepAlive || sinceOpen < keepAlive-margin {
		return 0
	}
	switch phase := sinceOpen % keepAlive; {
	case phase < busy+margin:
		return busy + margin - phase
	case phase > keepAlive-margin:
		return keepAlive - phase + busy + margin
	}
	return 0
}

// close ends the session with the BMC and closes its socket, at once when no keepalive can be
// in flight, otherwise from a goroutine once it is over (the caller does not wait).
func (b *bmcSession) close() {
	if w := closeDelay(time.Since(b.opened), b.busy); w > 0 {
		time.AfterFunc(w, func() { closeClient(b.c) })
		return
	}
	closeClient(b.c)
}

// NewSessions returns an empty session cache whose sessions close after 30 s unused. An open
// session is kept alive at the BMC by go-ipmi's keepalive (Get Session Info every 30 s), so a
// caller may raise MaxIdle past the BMC's own idle timeout (the server keeps sessions from one
// power sync pass to the next).
func NewSessions() *Sessions {
	return &Sessions{MaxIdle: 30 * time.Second, open: map[string]*session{}}
}

// Close closes every cached session (closeParallel at a time) and waits for it.
func (s *Sessions) Close() {
	s.mu.Lock()
	var all []*bmcSession
	for k, ss := range s.open {
		ss.mu.Lock()
		if ss.c != nil {
			all = append(all, ss.c)
		}
		ss.c, ss.gone = nil, true
		ss.mu.Unlock()
		delete(s.open, k)
	}
	s.mu.Unlock()
	closeAll(all)
}

func closeClient(c *client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c.Close(ctx)
}

// closeParallel bounds how many idle sessions a sweep closes at once: each close is a request
// to a BMC that may take its round trip or its timeout.
const closeParallel = 32

// entry returns the cache entry for key, closing idle sessions on the way. The idle sessions
// are taken out under the lock and closed after it, concurrently: closing one asks its BMC,
// and a fleet's sweep closes thousands (one at a time under the lock, a power sync of 10,000
// IPMI nodes with 50 ms BMCs waited minutes for it).
func (s *Sessions) entry(key string) *session {
	s.mu.Lock()
	idle := s.sweep(key)
	ss := s.open[key]
	if ss == nil {
		ss = &session{}
		s.open[key] = ss
	}
	s.mu.Unlock()
	if len(idle) > 0 {
		go closeAll(idle)
	}
	return ss
}

// closeAll closes sessions, closeParallel at a time.
func closeAll(sessions []*bmcSession) {
	sem := make(chan struct{}, closeParallel)
	var wg sync.WaitGroup
	for _, c := range sessions {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c.close()
		}()
	}
	wg.Wait()
}

// sweep takes the sessions idle for longer than MaxIdle (but key's) out of the cache and
// returns them for closing; s.mu is held.
func (s *Sessions) sweep(key string) []*bmcSession {
	now := time.Now()
	// Looking for idle sessions costs one pass over all of them: with a fleet's thousands of
	// sessions that is done a few times per MaxIdle, not at every operation.
	sweep := now.Sub(s.swept) >= s.MaxIdle/8
	if sweep {
		s.swept = now
	}
	if !sweep {
		return nil
	}
	var idle []*bmcSession
	for k, ss := range s.open {
		if k != key && ss.mu.TryLock() {
			if ss.c != nil && now.Sub(ss.lastUsed) > s.MaxIdle {
				idle = append(idle, ss.c)
				ss.c, ss.gone = nil, true
				delete(s.open, k)
			}
			ss.mu.Unlock()
		}
	}
	return idle
}

var (
	_ conductor.Power         = Interface{}
	_ conductor.Management    = Interface{}
	_ conductor.Validator     = Interface{}
	_ conductor.Rebooter      = Interface{}
	_ conductor.SoftPower     = Interface{}
	_ conductor.NMIInjector   = Interface{}
	_ conductor.SerialConsole = Interface{}
)

type info struct {
	address  string
	port     int
	username string
	password string
	suites   []types.CipherSuiteID
	priv     types.PrivilegeLevel
}

var privLevels = map[string]types.PrivilegeLevel{
	"ADMINISTRATOR": types.PrivilegeLevelAdministrator, "OPERATOR": types.PrivilegeLevelOperator,
	"USER": types.PrivilegeLevelUser, "CALLBACK": types.PrivilegeLevelCallback,
}

// parseInfo reads and checks a node's driver_info, naming every missing or malformed key.
func parseInfo(n *ironwork.Node) (info, error) {
	di := n.DriverInfo
	str := func(k string) string {
		switch v := di[k].(type) {
		case string:
			return strings.TrimSpace(v)
		case float64:
			return strconv.FormatFloat(v, 'f', -1, 64)
		}
		return ""
	}
	inf := info{port: 623, priv: types.PrivilegeLevelAdministrator,
		suites: []types.CipherSuiteID{types.CipherSuiteID17, types.CipherSuiteID3}}
	if inf.address = str("ipmi_address"); inf.address == "" {
		return inf, ironwork.Errorf(ironwork.EINVALID, "Missing the following IPMI credentials in node's driver_info: ['ipmi_address']. (node %s)", n.UUID)
	}
	if p := str("ipmi_port"); p != "" {
		port, err := strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return inf, ironwork.Errorf(ironwork.EINVALID, "Invalid IPMI port %q in node %s driver_info: a number from 1 to 65535", p, n.UUID)
		}
		inf.port = port
	}
	inf.username, inf.password = str("ipmi_username"), str("ipmi_password")
	if cs := str("ipmi_cipher_suite"); cs != "" {
		id, err := strconv.Atoi(cs)
		if err != nil || (id != 3 && id != 17) {
			return inf, ironwork.Errorf(ironwork.EINVALID, "Invalid ipmi_cipher_suite %q in node %s driver_info: 3 (HMAC-SHA1, AES-CBC-128) or 17 (HMAC-SHA256, AES-CBC-128)", cs, n.UUID)
		}
		inf.suites = []types.CipherSuiteID{types.CipherSuiteID(id)}
	}
	if p := str("ipmi_priv_level"); p != "" {
		lvl, ok := privLevels[strings.ToUpper(p)]
		if !ok {
			return inf, ironwork.Errorf(ironwork.EINVALID, "Invalid privilege level value: %s, the valid value can be one of ADMINISTRATOR, CALLBACK, OPERATOR, USER (node %s)", p, n.UUID)
		}
		inf.priv = lvl
	}
	if b := str("ipmi_bridging"); b != "" && b != "no" {
		return inf, ironwork.Errorf(ironwork.EINVALID, "ipmi_bridging %q is not supported yet (node %s): only \"no\"", b, n.UUID)
	}
	return inf, nil
}

func (d Interface) pollInterval() time.Duration {
	if d.PollInterval > 0 {
		return d.PollInterval
	}
	return time.Second
}

// retryPause is the pause between two attempts of an operation whose session stopped
// answering.
const retryPause = time.Second

// limits returns the timeout of one attempt of a request, how many times a request on an
// open session is resent, and how long a BMC that does not answer is retried.
func (d Interface) limits() (timeout time.Duration, retries int, budget time.Duration) {
	timeout, retries, budget = d.CommandTimeout, d.Retries, d.RetryTimeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	if retries <= 0 {
		retries = 2
	}
	if budget <= 0 {
		budget = 60 * time.Second
	}
	return timeout, retries, budget
}

// answered says whether err is the BMC's answer (a completion code) rather than silence or
// a broken session: such an operation is not tried again.
func answered(err error) bool {
	var re *types.ResponseError
	return errors.As(err, &re)
}

// do runs fn with an RMCP+ session to the node's BMC: a cached one when the interface has a
// session cache, or a new one closed afterwards. When fn fails without an answer from the
// BMC (a dropped session, a BMC that went silent), the session is dropped and fn runs again
// on a new one, until RetryTimeout has passed since the start; opening a session retries a
// silent BMC for what remains of RetryTimeout, and fails at once on an answer that refuses
// it (wrong credentials or cipher suite).
func (d Interface) do(ctx context.Context, t *conductor.Task, fn func(c *client.Client) error) error {
	inf, err := parseInfo(t.Node)
	if err != nil {
		return err
	}
	_, _, budget := d.limits()
	deadline := time.Now().Add(budget)
	ss := &session{}
	if d.Sessions != nil {
		sum := sha256.Sum256([]byte(fmt.Sprintf("%s|%d|%s|%s|%v|%d", inf.address, inf.port, inf.username, inf.password, inf.suites, inf.priv)))
		for {
			ss = d.Sessions.entry(string(sum[:]))
			ss.mu.Lock()
			if !ss.gone { // else swept while this call waited for it: a session opened on it would never be closed
				break
			}
			ss.mu.Unlock()
		}
	} else {
		ss.mu.Lock()
	}
	defer ss.mu.Unlock()
	for {
		if ss.c == nil {
			c, err := d.session(ctx, inf, time.Until(deadline))
			if err != nil {
				return err
			}
			ss.c = c
		}
		err := fn(ss.c.c)
		if err == nil {
			ss.lastUsed = time.Now()
			if d.Sessions == nil {
				ss.c.close()
			}
			return nil
		}
		ss.c.close()
		ss.c = nil
		if answered(err) || ctx.Err() != nil || time.Until(deadline) < retryPause {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(retryPause):
		}
	}
}

// session opens an RMCP+ session with the BMC, resending unanswered requests for up to
// budget.
func (d Interface) session(ctx context.Context, inf info, budget time.Duration) (*bmcSession, error) {
	timeout, retries, _ := d.limits()
	c, err := client.NewClient(inf.address, inf.port, inf.username, inf.password)
	if err != nil {
		return nil, fmt.Errorf("IPMI client for %s: %w", inf.address, err)
	}
	c.WithInterface(client.InterfaceLanplus).WithCipherSuiteID(inf.suites...).WithTimeout(timeout).
		WithRetry(max(int(budget/timeout)-1, retries)).WithMaxPrivilegeLevel(inf.priv)
	if err := c.Connect(ctx); err != nil {
		return nil, fmt.Errorf("IPMI session with %s:%d as %q (check ipmi_address, ipmi_port, ipmi_username, ipmi_password and ipmi_cipher_suite): %w",
			inf.address, inf.port, inf.username, err)
	}
	c.WithRetry(retries) // on the open session: a silent BMC makes do open a new one
	return &bmcSession{c: c, opened: time.Now(), busy: time.Duration(retries+1) * timeout}, nil
}

// Validate implements conductor.Validator: driver_info is complete and well formed.
func (Interface) Validate(_ context.Context, t *conductor.Task) error {
	_, err := parseInfo(t.Node)
	return err
}

func powerOf(c *client.Client, ctx context.Context) (ironwork.PowerState, error) {
	st, err := c.GetChassisStatus(ctx)
	if err != nil {
		return "", fmt.Errorf("IPMI Get Chassis Status: %w", err)
	}
	if st.PowerIsOn {
		return ironwork.PowerOn, nil
	}
	return ironwork.PowerOff, nil
}

// PowerState implements conductor.Power.
func (d Interface) PowerState(ctx context.Context, t *conductor.Task) (ironwork.PowerState, error) {
	var st ironwork.PowerState
	err := d.do(ctx, t, func(c *client.Client) (err error) {
		st, err = powerOf(c, ctx)
		return err
	})
	return st, err
}

// control sends a Chassis Control and waits until the chassis reports want ("" waits not).
func (d Interface) control(ctx context.Context, t *conductor.Task, cc chassis.ChassisControl, want ironwork.PowerState, timeout time.Duration) error {
	if err := d.do(ctx, t, func(c *client.Client) error {
		if _, err := c.ChassisControl(ctx, cc); err != nil {
			return fmt.Errorf("IPMI Chassis Control %d: %w", cc, err)
		}
		return nil
	}); err != nil || want == "" {
		return err
	}
	return conductor.WaitForPower(ctx, func() (ironwork.PowerState, error) { return d.PowerState(ctx, t) }, want, timeout, d.pollInterval())
}

// SetPowerState implements conductor.Power.
func (d Interface) SetPowerState(ctx context.Context, t *conductor.Task, target ironwork.PowerState, timeout time.Duration) error {
	switch target {
	case ironwork.PowerOn:
		return d.control(ctx, t, chassis.ChassisControlPowerUp, ironwork.PowerOn, timeout)
	case ironwork.PowerOff:
		return d.control(ctx, t, chassis.ChassisControlPowerDown, ironwork.PowerOff, timeout)
	}
	return ironwork.Errorf(ironwork.EINVALID, "the ipmitool power interface cannot set power state %q", target)
}

// Reboot implements conductor.Rebooter: off then on for a node that is on (a soft reboot
// shuts down gracefully first), on for a node that is off.
func (d Interface) Reboot(ctx context.Context, t *conductor.Task, soft bool, timeout time.Duration) error {
	st, err := d.PowerState(ctx, t)
	if err != nil {
		return err
	}
	if st == ironwork.PowerOn {
		off := chassis.ChassisControlPowerDown
		if soft {
			off = chassis.ChassisControlSoftShutdown
		}
		if err := d.control(ctx, t, off, ironwork.PowerOff, timeout); err != nil {
			return err
		}
	}
	return d.control(ctx, t, chassis.ChassisControlPowerUp, ironwork.PowerOn, timeout)
}

// SoftPowerOff implements conductor.SoftPower.
func (d Interface) SoftPowerOff(ctx context.Context, t *conductor.Task, timeout time.Duration) error {
	return d.control(ctx, t, chassis.ChassisControlSoftShutdown, ironwork.PowerOff, timeout)
}

// InjectNMI implements conductor.NMIInjector.
func (d Interface) InjectNMI(ctx context.Context, t *conductor.Task) error {
	return d.control(ctx, t, chassis.ChassisControlDiagnosticInterrupt, "", 0)
}

var toSelector = map[string]types.BootDeviceSelector{
	conductor.BootPXE: types.BootDeviceSelectorForcePXE, conductor.BootDisk: types.BootDeviceSelectorForceHardDrive,
	conductor.BootCDROM: types.BootDeviceSelectorForceCDROM, conductor.BootBIOS: types.BootDeviceSelectorForceBIOSSetup,
	conductor.BootSafe: types.BootDeviceSelectorForceHardDriveSafe,
}

// BootDevice implements conductor.Management.
func (d Interface) BootDevice(ctx context.Context, t *conductor.Task) (conductor.BootDevice, error) {
	flags := &types.BootOptionParam_BootFlags{}
	if err := d.do(ctx, t, func(c *client.Client) error {
		if err := c.GetSystemBootOptionsParamFor(ctx, flags); err != nil {
			return fmt.Errorf("IPMI Get System Boot Options: %w", err)
		}
		return nil
	}); err != nil {
		return conductor.BootDevice{}, err
	}
	// As Ironic (which reads ipmitool's "Boot Device Selector"), the selector counts whatever
	// the valid bit says: some BMCs, OpenIPMI's simulator among them, do not keep that bit.
	out := conductor.BootDevice{Device: conductor.BootDisk, Persistent: flags.Persist}
	for dev, sel := range toSelector {
		if flags.BootDeviceSelector == sel {
			out.Device = dev
		}
	}
	return out, nil
}

// SupportedBootDevices implements conductor.Management.
func (Interface) SupportedBootDevices(context.Context, *conductor.Task) ([]string, error) {
	return []string{conductor.BootPXE, conductor.BootDisk, conductor.BootCDROM, conductor.BootBIOS, conductor.BootSafe}, nil
}

// SetBootDevice implements conductor.Management: legacy or EFI boot follows the node's
// boot_mode.
func (d Interface) SetBootDevice(ctx context.Context, t *conductor.Task, dev conductor.BootDevice) error {
	sel, ok := toSelector[dev.Device]
	if !ok {
		return ironwork.Errorf(ironwork.EINVALID, "the ipmitool management interface cannot boot from %q", dev.Device)
	}
	bootType := types.BIOSBootTypeLegacy
	if t.Node.BootMode == "uefi" {
		bootType = types.BIOSBootTypeEFI
	}
	return d.do(ctx, t, func(c *client.Client) error {
		if err := c.SetBootDevice(ctx, sel, bootType, dev.Persistent); err != nil {
			return fmt.Errorf("IPMI Set System Boot Options (%s): %w", dev.Device, err)
		}
		return nil
	})
}

// AttachConsole implements conductor.SerialConsole with Serial-over-LAN on a session of its
// own (SOL holds its session for as long as it runs). Typing "~X" at the start of a line, as in
// ipmitool, ends it too.
func (d Interface) AttachConsole(ctx context.Context, t *conductor.Task, in io.Reader, out io.Writer) error {
	inf, err := parseInfo(t.Node)
	if err != nil {
		return err
	}
	_, _, budget := d.limits()
	bs, err := d.session(ctx, inf, budget)
	if err != nil {
		return err
	}
	defer bs.close()
	c := bs.c
	quiet := func(uint8, io.Reader, io.Writer, *transport.ActivatePayloadResponse) {}
	if err := c.SOLActivate(ctx, in, out, &client.SOLActivateOptions{OnActivated: quiet, OnDeactivated: quiet,
		PollInterval: 50 * time.Millisecond}); err != nil && ctx.Err() == nil {
		return fmt.Errorf("IPMI Serial-over-LAN: %w", err)
	}
	return nil
}
