package ipmi

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/chassis"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// Vendor is the ipmitool vendor interface (Ironic's VendorPassthru of the ipmi hardware type):
// send_raw sends one raw IPMI request, bmc_reset resets the BMC (warm or cold). Both run in a
// conductor worker, as in Ironic: the API answers 202 and the outcome is logged.
type Vendor struct{ Interface }

var (
	_ conductor.Vendor     = Vendor{}
	_ conductor.Indicators = Interface{}
)

// VendorMethods implements conductor.Vendor.
func (Vendor) VendorMethods() map[string]conductor.PassthruMethod {
	return map[string]conductor.PassthruMethod{
		"send_raw": {HTTPMethods: []string{"POST"}, Async: true, RequireExclusiveLock: true,
			Description: "Send raw bytes to the BMC. Required argument: 'raw_bytes' - a string of raw bytes (e.g. '0x00 0x01')."},
		"bmc_reset": {HTTPMethods: []string{"POST"}, Async: true, RequireExclusiveLock: true,
			Description: "Reset the BMC. Required argument: 'warm' (Boolean) - for warm (True) or cold (False) reset."},
	}
}

// rawRequest is a parsed raw_bytes: network function, command and data.
type rawRequest struct {
	netFn types.NetFn
	cmd   uint8
	data  []byte
}

// parseRawBytes parses ipmitool's raw form: the network function, the command and the data,
// each a byte in hex ("0x06", "06") separated by spaces.
func parseRawBytes(s string) (rawRequest, error) {
	words := strings.Fields(s)
	if len(words) < 2 {
		return rawRequest{}, fmt.Errorf("raw_bytes %q needs a network function and a command, e.g. '0x06 0x01'", s)
	}
	if len(words) > 2+255 {
		return rawRequest{}, fmt.Errorf("raw_bytes has %d bytes: at most 257", len(words))
	}
	b := make([]byte, len(words))
	for i, w := range words {
		v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(w), "0x"), 16, 8)
		if err != nil {
			return rawRequest{}, fmt.Errorf("raw_bytes %q: %q is not a byte in hex", s, w)
		}
		b[i] = byte(v)
	}
	if b[0] > 0x3f {
		return rawRequest{}, fmt.Errorf("raw_bytes %q: network function 0x%02x is over 0x3f", s, b[0])
	}
	return rawRequest{netFn: types.NetFn(b[0]), cmd: b[1], data: b[2:]}, nil
}

// warmOf reads bmc_reset's "warm" argument as Ironic's bool_from_string (default true).
func warmOf(v any) (bool, error) {
	switch w := v.(type) {
	case nil:
		return true, nil
	case bool:
		return w, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(w)) {
		case "1", "t", "true", "on", "y", "yes":
			return true, nil
		case "0", "f", "false", "off", "n", "no":
			return false, nil
		}
	}
	return false, fmt.Errorf("warm %v is not a boolean", v)
}

// ValidatePassthru implements conductor.Vendor.
func (Vendor) ValidatePassthru(_ context.Context, t *conductor.Task, call conductor.PassthruCall) error {
	switch call.Method {
	case "send_raw":
		raw, _ := call.Args["raw_bytes"].(string)
		if raw == "" {
			return ironwork.Errorf(ironwork.EINVALID, "Parameter raw_bytes (string of bytes) was not specified.")
		}
		if _, err := parseRawBytes(raw); err != nil {
			return ironwork.Errorf(ironwork.EINVALID, "%s", err.Error())
		}
	case "bmc_reset":
		if _, err := warmOf(call.Args["warm"]); err != nil {
			return ironwork.Errorf(ironwork.EINVALID, "%s", err.Error())
		}
	default:
		return ironwork.Errorf(ironwork.EINVALID, "Unsupported method (%s) passed to IPMItool driver.", call.Method)
	}
	_, err := parseInfo(t.Node)
	return err
}

// CallPassthru implements conductor.Vendor.
func (d Vendor) CallPassthru(ctx context.Context, t *conductor.Task, call conductor.PassthruCall) (any, error) {
	switch call.Method {
	case "send_raw":
		raw, _ := call.Args["raw_bytes"].(string)
		req, err := parseRawBytes(raw)
		if err != nil {
			return nil, err
		}
		var out []byte
		if err := d.do(ctx, t, func(c *client.Client) error {
			resp, err := c.RawCommand(ctx, req.netFn, req.cmd, req.data, "raw")
			if err != nil {
				return fmt.Errorf("IPMI raw %s: %w", raw, err)
			}
			out = resp.Response
			return nil
		}); err != nil {
			return nil, err
		}
		hex := make([]string, len(out))
		for i, b := range out {
			hex[i] = fmt.Sprintf("%02x", b)
		}
		t.Log.Info("IPMI raw request answered", "raw_bytes", raw, "response", strings.Join(hex, " "))
		return strings.Join(hex, " "), nil
	case "bmc_reset":
		warm, _ := warmOf(call.Args["warm"])
		kind := "cold"
		if warm {
			kind = "warm"
		}
		if err := d.do(ctx, t, func(c *client.Client) error {
			if warm {
				return c.WarmReset(ctx)
			}
			return c.ColdReset(ctx)
		}); err != nil {
			return nil, fmt.Errorf("IPMI bmc reset %s: %w", kind, err)
		}
		t.Log.Info("BMC reset", "kind", kind)
		return nil, nil
	}
	return nil, ironwork.Errorf(ironwork.EINVALID, "Unsupported method (%s) passed to IPMItool driver.", call.Method)
}

// identify is the one indicator IPMI offers: the chassis identify light.
const identify = "identify"

// SupportedIndicators implements conductor.Indicators: the chassis identify light, which
// Chassis Identify turns on (until turned off) or off.
func (Interface) SupportedIndicators(context.Context, *conductor.Task) (map[string]map[string]conductor.IndicatorInfo, error) {
	return map[string]map[string]conductor.IndicatorInfo{
		conductor.ComponentChassis: {identify: {States: []string{conductor.IndicatorOff, conductor.IndicatorOn}}},
	}, nil
}

func checkIdentify(t *conductor.Task, component, name string) error {
	if component != conductor.ComponentChassis || name != identify {
		return ironwork.Errorf(ironwork.EINVALID, "Unknown indicator %s for component %s of node %s", name, component, t.Node.UUID)
	}
	return nil
}

// IndicatorState implements conductor.Indicators from Get Chassis Status; a BMC that does not
// report the identify state gives UNKNOWN.
func (d Interface) IndicatorState(ctx context.Context, t *conductor.Task, component, name string) (string, error) {
	if err := checkIdentify(t, component, name); err != nil {
		return "", err
	}
	var st *chassis.GetChassisStatusResponse
	if err := d.do(ctx, t, func(c *client.Client) (err error) {
		st, err = c.GetChassisStatus(ctx)
		return err
	}); err != nil {
		return "", fmt.Errorf("IPMI Get Chassis Status: %w", err)
	}
	if !st.ChassisIdentifySupported {
		return conductor.IndicatorUnknown, nil
	}
	switch st.ChassisIdentifyState {
	case chassis.ChassisIdentifyStateOff:
		return conductor.IndicatorOff, nil
	case chassis.ChassisIdentifyStateTemporaryOn, chassis.ChassisIdentifyStateIndefiniteOn:
		return conductor.IndicatorOn, nil
	}
	return conductor.IndicatorUnknown, nil
}

// SetIndicatorState implements conductor.Indicators with Chassis Identify: ON forces the light
// on, OFF turns it off; IPMI has no blinking state.
func (d Interface) SetIndicatorState(ctx context.Context, t *conductor.Task, component, name, state string) error {
	if err := checkIdentify(t, component, name); err != nil {
		return err
	}
	if state != conductor.IndicatorOn && state != conductor.IndicatorOff {
		return ironwork.Errorf(ironwork.EINVALID, "Indicator %s@%s of node %s can be ON or OFF, not %s", name, component, t.Node.UUID, state)
	}
	return d.do(ctx, t, func(c *client.Client) error {
		if _, err := c.ChassisIdentify(ctx, 0, state == conductor.IndicatorOn); err != nil {
			return fmt.Errorf("IPMI Chassis Identify %s: %w", state, err)
		}
		return nil
	})
}
