package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ironwork/ironwork"
)

// NodeInventory is what a node's last inspection found: the inventory and the plugin data as
// the agent sent them (JSON objects).
type NodeInventory struct {
	Inventory  json.RawMessage
	PluginData json.RawMessage
}

// PutNodeInventory stores a node's inventory and plugin data, replacing those of an earlier
// inspection.
func (s *Store) PutNodeInventory(ctx context.Context, nodeID int64, inv NodeInventory) error {
	plugin := inv.PluginData
	if len(plugin) == 0 {
		plugin = json.RawMessage("{}")
	}
	return s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.rebind("DELETE FROM node_inventory WHERE node_id = ?"), nodeID); err != nil {
			return fmt.Errorf("replace inventory of node %d: %w", nodeID, err)
		}
		if _, err := tx.ExecContext(ctx, s.rebind("INSERT INTO node_inventory (node_id, inventory, plugin_data, created_at) VALUES (?, ?, ?, ?)"),
			nodeID, string(inv.Inventory), string(plugin), s.nowUTC().UnixMicro()); err != nil {
			return fmt.Errorf("store inventory of node %d: %w", nodeID, err)
		}
		return nil
	})
}

// GetNodeInventory returns a node's stored inventory; ENOTFOUND when it has none.
func (s *Store) GetNodeInventory(ctx context.Context, nodeID int64, nodeUUID string) (NodeInventory, error) {
	var inv, plugin string
	err := s.db.QueryRowContext(ctx, s.rebind("SELECT inventory, plugin_data FROM node_inventory WHERE node_id = ?"), nodeID).Scan(&inv, &plugin)
	if errors.Is(err, sql.ErrNoRows) {
		return NodeInventory{}, ironwork.Errorf(ironwork.ENOTFOUND, "Node inventory for node %s could not be found.", nodeUUID)
	}
	if err != nil {
		return NodeInventory{}, fmt.Errorf("read inventory of node %s: %w", nodeUUID, err)
	}
	return NodeInventory{Inventory: json.RawMessage(inv), PluginData: json.RawMessage(plugin)}, nil
}
