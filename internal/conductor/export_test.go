package conductor

import (
	"context"

	"github.com/ironwork/ironwork/internal/sqlstore"
)

// TakeOvers runs one pass of the take-over loop (takeOvers) for the tests of conductor_test,
// which otherwise reach the loop only through its heartbeat interval.
func (c *Conductor) TakeOvers(ctx context.Context) error { return c.takeOvers(ctx) }

// MyNodeUUIDs returns the UUIDs of the nodes f selects that this conductor manages, as its
// periodic passes read them (myNodes), for the tests of conductor_test.
func (c *Conductor) MyNodeUUIDs(ctx context.Context, f sqlstore.NodeKeyFilter) ([]string, error) {
	nodes, err := c.myNodes(ctx, f, nil)
	var out []string
	for _, n := range nodes {
		out = append(out, n.UUID)
	}
	return out, err
}
