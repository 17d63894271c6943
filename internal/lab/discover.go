package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Discovery in the lab: a machine with NodeSpec.Discover is built like the others but not
// enrolled; Up sets it to boot from the network and powers it on through the vbmc's Redfish
// service, as an operator cabling a new server would. What happens next is the server's
// discovery (it is inspected and enrolled, or its boot goes unanswered).

// checkDiscover refuses what discovery cannot do in the lab.
func (o *Options) checkDiscover() error {
	var errs []error
	for _, n := range o.Nodes {
		if !n.Discover {
			continue
		}
		if o.Layout == LayoutProduction {
			errs = append(errs, fmt.Errorf("machine %s: discovery is supported in the %s layout only", n.Name, LayoutLab))
		}
		if n.BMC == "ipmi_sim" || n.Command != nil {
			errs = append(errs, fmt.Errorf("machine %s: a machine to discover needs the vbmc and the lab's QEMU command", n.Name))
		}
	}
	return errors.Join(errs...)
}

// startDiscovered sets the machine's next boot to the network and powers it on through the
// vbmc's Redfish service at redfishURL.
func startDiscovered(ctx context.Context, redfishURL string, n Node) error {
	hc := &http.Client{Timeout: 30 * time.Second}
	system := redfishURL + "/redfish/v1/Systems/" + n.Name
	call := func(method, url string, body any) error {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(b))
		if err != nil {
			return err
		}
		req.SetBasicAuth(BMCUser, BMCPassword)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("start machine %s for discovery: %w", n.Name, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			return fmt.Errorf("start machine %s for discovery: %s %s: %s: %s", n.Name, method, url, resp.Status, msg)
		}
		return nil
	}
	if err := call(http.MethodPatch, system, map[string]any{"Boot": map[string]any{
		"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Continuous"}}); err != nil {
		return err
	}
	return call(http.MethodPost, system+"/Actions/ComputerSystem.Reset", map[string]any{"ResetType": "On"})
}
