package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/agent"
)

// In-band inspection, as ironic-python-agent's inspector module does it: with
// ipa-inspection-callback-url on the kernel command line, the agent collects its inventory
// before anything else and posts it, with IPA's plugin data, to that URL (Ironic's
// POST /v1/continue_inspection). Discovery is the same post from a machine no node knows.

// inspectionAPIVersion is the microversion of continue_inspection that answers like lookup
// (node and config, with an agent token when the agent is to stay: fast track).
const inspectionAPIVersion = "1.84"

// inspectionRetry is how the post is retried (IPA: 5 attempts, exponential from 5 s to 30 s),
// on no answer, 5xx and 409.
type inspectionRetry struct {
	Attempts int
	Wait     time.Duration // first pause; ×1.5 each time
	MaxWait  time.Duration
}

var defaultInspectionRetry = inspectionRetry{Attempts: 5, Wait: 5 * time.Second, MaxWait: 30 * time.Second}

// inspectionData is the body of continue_inspection: the inventory and IPA's plugin data
// (collector "default": root_disk, boot_interface, configuration, error; collector "lldp":
// lldp_raw).
type inspectionData struct {
	Inventory     agent.Inventory            `json:"inventory"`
	RootDisk      *agent.InventoryDisk       `json:"root_disk,omitempty"`
	BootInterface *string                    `json:"boot_interface"`
	Configuration inspectionConfiguration    `json:"configuration"`
	Error         *string                    `json:"error"`
	LLDPRaw       map[string][]agent.LLDPTLV `json:"lldp_raw,omitempty"`
}

type inspectionConfiguration struct {
	Collectors []string         `json:"collectors"`
	Managers   []map[string]any `json:"managers"`
}

// inspectionAnswer is what continue_inspection answers: {"uuid"} (ironic-inspector and
// Ironic below 1.84) or lookup's {"node", "config"}.
type inspectionAnswer struct {
	UUID   string           `json:"uuid"`
	Node   map[string]any   `json:"node"`
	Config api.LookupConfig `json:"config"`
}

func (a inspectionAnswer) nodeUUID() string {
	if u, _ := a.Node["uuid"].(string); u != "" {
		return u
	}
	return a.UUID
}

// collectInspectionData gathers what the agent posts; failures of optional parts (LLDP, no
// root disk) go into "error" as IPA's accumulated failures do, and only a failed inventory
// is an error.
func collectInspectionData(ctx context.Context, cfg Config, log *slog.Logger) (inspectionData, error) {
	start := time.Now()
	inv, err := agent.CollectInventory(agent.InventoryOptions{SysRoot: cfg.SysRoot, BootMAC: cfg.BootMAC})
	if err != nil {
		return inspectionData{}, err
	}
	data := inspectionData{
		BootInterface: inv.Boot.PXEInterface,
		Configuration: inspectionConfiguration{Collectors: []string{"default"},
			Managers: []map[string]any{{"name": "generic_hardware_manager", "version": "1.1"}}},
	}
	var failures []error
	if cfg.CollectLLDP && len(inv.Interfaces) > 0 {
		lstart := time.Now()
		heard, err := agent.ListenLLDP(ctx, inv.InterfaceNames(), cfg.LLDPTimeout)
		if err != nil {
			failures = append(failures, fmt.Errorf("collect LLDP: %w", err))
		}
		inv.AddLLDP(heard)
		data.LLDPRaw = map[string][]agent.LLDPTLV{}
		for _, n := range inv.Interfaces {
			data.LLDPRaw[n.Name] = append([]agent.LLDPTLV{}, heard[n.Name]...)
		}
		data.Configuration.Collectors = append(data.Configuration.Collectors, "lldp")
		log.Info("LLDP collected", "interfaces", len(inv.Interfaces), "heard", len(heard), "seconds", time.Since(lstart).Seconds())
	}
	// The disk a deploy without root device hints would choose (IPA's guess_root_disk).
	if disks, err := agent.ListDisks(cfg.SysRoot); err == nil {
		if d, err := agent.ChooseRootDevice(disks, nil); err == nil {
			for i := range inv.Disks {
				if inv.Disks[i].Name == d.Name {
					rd := inv.Disks[i]
					data.RootDisk = &rd
				}
			}
		} else {
			log.Warn("no suitable root device", "error", err)
		}
	}
	if len(failures) > 0 {
		msg := errors.Join(failures...).Error()
		data.Error = &msg
	}
	data.Inventory = inv
	log.Info("inventory collected", "cpus", inv.CPU.Count, "memory_mb", inv.Memory.PhysicalMB, "disks", len(inv.Disks),
		"interfaces", len(inv.Interfaces), "seconds", time.Since(start).Seconds())
	return data, nil
}

// postInspection posts data to url, retrying as IPA does. A 4xx other than 409 is final.
func postInspection(ctx context.Context, c *apiClient, url string, data inspectionData, retry inspectionRetry, log *slog.Logger) (inspectionAnswer, error) {
	wait := retry.Wait
	for attempt := 1; ; attempt++ {
		var ans inspectionAnswer
		err := api.Call(ctx, c.http, api.Request{Method: http.MethodPost, URL: url,
			Header: http.Header{api.VersionHeader: {inspectionAPIVersion}}, Body: data, Limit: 1 << 20}, &ans, nil)
		if err == nil {
			return ans, nil
		}
		var answer *api.Error
		final := errors.As(err, &answer) && answer.Status < 500 && answer.Status != http.StatusConflict
		if final || attempt >= retry.Attempts {
			return inspectionAnswer{}, fmt.Errorf("post inspection data to %s (attempt %d): %w", url, attempt, err)
		}
		log.Warn("posting inspection data failed, retrying", logKeyError, err, logKeyURL, url, "attempt", attempt, logKeyInterval, wait)
		select {
		case <-ctx.Done():
			return inspectionAnswer{}, fmt.Errorf("post inspection data to %s: %w", url, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(wait*3/2, retry.MaxWait)
	}
}

// inspectionOutcome is what the agent does after inspecting.
type inspectionOutcome int

const (
	afterInspectionPowerOff inspectionOutcome = iota // nothing else to do: the machine goes off
	afterInspectionContinue                          // lookup and heartbeat (fast track, or the post failed)
)

// inspect runs the inspection and says what follows; on afterInspectionContinue, cfg has the
// node and token the answer gave, if any.
func inspect(ctx context.Context, cfg *Config, env agentEnv, retry inspectionRetry) (inspectionOutcome, error) {
	start := time.Now()
	env.console.Printf("inspection: collecting the inventory for %s", cfg.InspectionURL)
	data, err := collectInspectionData(ctx, *cfg, env.log)
	if err != nil {
		return afterInspectionContinue, fmt.Errorf("inspection: %w", err)
	}
	collected := time.Since(start)
	ans, err := postInspection(ctx, newAPIClient(*cfg), cfg.InspectionURL, data, retry, env.log)
	env.log.Info("inspection phases", "collect_seconds", collected.Seconds(), "post_seconds", (time.Since(start) - collected).Seconds())
	if err != nil {
		// IPA proceeds with lookup: a conductor may still know the node.
		env.console.Printf("inspection: %v", err)
		return afterInspectionContinue, err
	}
	node := ans.nodeUUID()
	token := ans.Config.AgentToken
	if token != "" && token != hiddenToken && cfg.APIURL != "" {
		env.console.Printf("inspection: node %s inspected; staying up (fast track)", node)
		cfg.AgentToken, cfg.NodeUUID = token, node
		return afterInspectionContinue, nil
	}
	env.console.Printf("inspection: node %s inspected", node)
	return afterInspectionPowerOff, nil
}
