package sqlstore

import (
	"context"
	"fmt"

	"github.com/ironwork/ironwork"
)

// NodeCount is how many nodes share a provision state, power state, maintenance flag and fault.
type NodeCount struct {
	ProvisionState ironwork.ProvisionState
	PowerState     ironwork.PowerState
	Maintenance    bool
	Fault          string
	Count          int
}

// CountNodes counts the nodes by provision state, power state, maintenance and fault: one
// grouped query, cheap enough for every metrics scrape.
func (s *Store) CountNodes(ctx context.Context) ([]NodeCount, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT provision_state, COALESCE(power_state, ''), maintenance, COALESCE(fault, ''), COUNT(*)
		FROM nodes GROUP BY provision_state, COALESCE(power_state, ''), maintenance, COALESCE(fault, '')`)
	if err != nil {
		return nil, fmt.Errorf("count nodes: %w", err)
	}
	defer rows.Close()
	var out []NodeCount
	for rows.Next() {
		var c NodeCount
		if err := rows.Scan(&c.ProvisionState, &c.PowerState, boolCol{&c.Maintenance}, &c.Fault, &c.Count); err != nil {
			return nil, fmt.Errorf("scan node count: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count nodes: %w", err)
	}
	return out, nil
}
