package conductor

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/ironwork/ironwork"
)

// Firmware components: the firmware interface reads them (FirmwareReader) and the conductor
// records them in the store (firmware_information, shown at GET /v1/nodes/{node}/firmware)
// when a node is verified, when cleaning starts and after every firmware step.

// FirmwareReader reads the versions of a node's firmware components.
type FirmwareReader interface {
	FirmwareComponents(ctx context.Context, t *Task) ([]ironwork.FirmwareComponent, error)
}

// StepFirmwareUpdate is the firmware interface's update step, as Ironic's.
const StepFirmwareUpdate = "update"

// FirmwareUpdate is one item of a firmware.update step's "settings".
type FirmwareUpdate struct {
	Component string // bios, bmc or nic:<id>
	URL       string
	Checksum  string // optional: algo:hex or a bare hex digest
	Wait      int    // optional: seconds to wait after the update
}

// FirmwareSettingsArg reads and checks the "settings" argument of a firmware.update step.
func FirmwareSettingsArg(args map[string]any) ([]FirmwareUpdate, error) {
	list, ok := args["settings"].([]any)
	if !ok || len(list) == 0 {
		return nil, ironwork.Errorf(ironwork.EINVALID, "firmware.update needs the argument \"settings\": a non-empty list of {\"component\": ..., \"url\": ..., \"checksum\": ..., \"wait\": ...}")
	}
	var out []FirmwareUpdate
	for i, item := range list {
		m, _ := item.(map[string]any)
		if m == nil {
			return nil, ironwork.Errorf(ironwork.EINVALID, "firmware.update: setting %d is not an object", i)
		}
		var u FirmwareUpdate
		for k, v := range m {
			var ok bool
			switch k {
			case "component":
				u.Component, ok = v.(string)
			case "url":
				u.URL, ok = v.(string)
			case "checksum":
				u.Checksum, ok = v.(string)
			case "wait":
				var f float64
				f, ok = v.(float64)
				ok = ok && f >= 0 && f == float64(int(f))
				u.Wait = int(f)
			default:
				return nil, ironwork.Errorf(ironwork.EINVALID, "firmware.update: setting %d has an unknown key %q", i, k)
			}
			if !ok {
				return nil, ironwork.Errorf(ironwork.EINVALID, "firmware.update: setting %d has an invalid %q", i, k)
			}
		}
		if u.Component != "bios" && u.Component != "bmc" && !strings.HasPrefix(u.Component, "nic:") {
			return nil, ironwork.Errorf(ironwork.EINVALID, "firmware.update: setting %d: component %q is not bios, bmc or nic:<id>", i, u.Component)
		}
		if p, err := url.Parse(u.URL); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, ironwork.Errorf(ironwork.EINVALID, "firmware.update: setting %d: url %q is not an http(s) URL", i, u.URL)
		}
		out = append(out, u)
	}
	return out, nil
}

// cacheFirmware records the components the node's firmware interface reads; as for the BIOS,
// a failure is logged and changes nothing else.
func (c *Conductor) cacheFirmware(ctx context.Context, t *Task) {
	r, ok := t.Driver.Impl(ironwork.FirmwareInterface).(FirmwareReader)
	if !ok {
		return
	}
	comps, err := r.FirmwareComponents(ctx, t)
	if err == nil {
		err = c.store.PutFirmwareComponents(ctx, t.Node.ID, comps)
	}
	if err != nil {
		t.Log.Warn("cache firmware components", "error", err)
		return
	}
	t.Log.Info("firmware components cached", "components", len(comps))
}

// checkFirmwareStep checks a firmware.update step's arguments before any work starts.
func checkFirmwareStep(s Step) error {
	if s.Interface != ironwork.FirmwareInterface || s.Name != StepFirmwareUpdate {
		return nil
	}
	if _, err := FirmwareSettingsArg(s.Args); err != nil {
		return fmt.Errorf("check firmware step: %w", err)
	}
	return nil
}
