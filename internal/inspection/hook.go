package inspection

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ironwork/ironwork"
)

// RuleSource gives the rules of a phase, built-in and user rules (sqlstore.Store).
type RuleSource interface {
	RulesForPhase(ctx context.Context, phase string) ([]*ironwork.InspectionRule, error)
}

// PortStore reads and changes a node's ports (sqlstore.Store).
type PortStore interface {
	PortsOfNode(ctx context.Context, nodeID int64) ([]*ironwork.Port, error)
	UpdatePort(ctx context.Context, ident string, fn func(*ironwork.Port) error) (*ironwork.Port, error)
}

// FailureError is an inspection that the rules failed; its message is the node's last_error.
type FailureError struct{ Reason string }

func (e *FailureError) Error() string { return e.Reason }

// portWriteTimeout bounds the deferred save of the ports rules changed.
const portWriteTimeout = time.Minute

// Hook runs the stored inspection rules for the conductor: Apply is the conductor's
// InspectionRules hook. The conductor calls it inside the transaction that saves the node,
// so it changes the node and the plugin data in place, and saves the ports the rules changed
// once that transaction lets go of the database (each port as Ironic saves it, whether or
// not a later rule fails). Wait waits for those saves.
type Hook struct {
	Rules  RuleSource
	Ports  PortStore
	Engine *Engine
	Log    *slog.Logger
	writes sync.WaitGroup
}

// NewHook returns a Hook over a store with the given engine settings.
func NewHook(rules RuleSource, ports PortStore, e *Engine, log *slog.Logger) *Hook {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Hook{Rules: rules, Ports: ports, Engine: e, Log: log}
}

// Run reads the rules of phase and the node's ports and runs the engine: the plain entry
// point, for a caller that saves the result itself.
func (h *Hook) Run(ctx context.Context, phase string, n *ironwork.Node, inventory, pluginData map[string]any) (Result, error) {
	rules, err := h.Rules.RulesForPhase(ctx, phase)
	if err != nil {
		return Result{}, fmt.Errorf("read inspection rules: %w", err)
	}
	var ports []*ironwork.Port
	if h.Ports != nil && n.ID != 0 {
		if ports, err = h.Ports.PortsOfNode(ctx, n.ID); err != nil {
			return Result{}, fmt.Errorf("read ports of node %s: %w", n.UUID, err)
		}
	}
	return h.Engine.Run(ctx, phase, rules, Input{Node: n, Ports: ports, Inventory: inventory, PluginData: pluginData}), nil
}

// Apply runs the rules of phase on a node being inspected. It copies the rules' changes to n
// and pluginData, starts the save of the changed ports, and returns a *FailureError when a
// rule failed the inspection.
func (h *Hook) Apply(ctx context.Context, phase string, n *ironwork.Node, inventory, pluginData map[string]any) error {
	res, err := h.Run(ctx, phase, n, inventory, pluginData)
	if err != nil {
		return err
	}
	if res.NodeChanged {
		*n = *res.Node
	}
	if res.PluginDataChanged && pluginData != nil {
		clear(pluginData)
		for k, v := range res.PluginData {
			pluginData[k] = v
		}
	}
	if len(res.ChangedPorts) > 0 && h.Ports != nil {
		h.savePorts(ctx, n.UUID, res)
	}
	if res.Failure != "" {
		return &FailureError{Reason: res.Failure}
	}
	return nil
}

// savePorts saves the changed ports in the background: the caller's transaction holds the
// database (SQLite has one writer) until Apply returns.
func (h *Hook) savePorts(ctx context.Context, node string, res Result) {
	changed := map[string]*ironwork.Port{}
	for _, p := range res.Ports {
		changed[p.UUID] = p
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), portWriteTimeout)
	h.writes.Add(1)
	go func() {
		defer h.writes.Done()
		defer cancel()
		for _, id := range res.ChangedPorts {
			want := changed[id]
			_, err := h.Ports.UpdatePort(ctx, id, func(p *ironwork.Port) error {
				p.Name, p.Description, p.PhysicalNetwork = want.Name, want.Description, want.PhysicalNetwork
				p.Vendor, p.Category, p.Extra, p.LocalLinkConnection = want.Vendor, want.Category, want.Extra, want.LocalLinkConnection
				p.PXEEnabled, p.IsSmartNIC = want.PXEEnabled, want.IsSmartNIC
				return nil
			})
			if err != nil {
				h.Log.ErrorContext(ctx, "save a port changed by inspection rules", "node", node, "port", id, "error", err)
			}
		}
	}()
}

// Wait waits until the ports that earlier Apply calls changed are saved.
func (h *Hook) Wait() { h.writes.Wait() }
