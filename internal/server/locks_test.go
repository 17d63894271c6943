package server_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"

	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

// TestStableStateMeansUnlocked drives many fake-hardware nodes at once through manage,
// provide and deploy, each verb sent as soon as the node shows the previous stable state with
// no target, as a client (or the real Ironic's users) would. None may be refused as locked:
// the conductor frees a node's lock in the same write that shows it at rest.
func TestStableStateMeansUnlocked(t *testing.T) {
	const nodeCount, clients = 48, 8
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, target.DSN(t))
			c := gopherClient(t, srv, "1.87")
			ctx := context.Background()
			var locked, calls atomic.Int64
			stable := func(uuid, state string) error {
				deadline := time.Now().Add(60 * time.Second)
				for {
					n, err := nodes.Get(ctx, c, uuid).Extract()
					if err != nil {
						return err
					}
					if n.ProvisionState == state && n.TargetProvisionState == "" {
						return nil
					}
					if n.LastError != "" || time.Now().After(deadline) {
						return fmt.Errorf("node %s: %s (target %q), last_error %q; want %s", uuid, n.ProvisionState, n.TargetProvisionState, n.LastError, state)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			run := func(i int) error {
				n, err := nodes.Create(ctx, c, nodes.CreateOpts{Name: fmt.Sprintf("race-%d", i), Driver: "fake-hardware"}).Extract()
				if err != nil {
					return err
				}
				for _, step := range []struct {
					verb nodes.TargetProvisionState
					want string
				}{{nodes.TargetManage, "manageable"}, {nodes.TargetProvide, "available"}, {nodes.TargetActive, "active"}} {
					calls.Add(1)
					err := nodes.ChangeProvisionState(ctx, c, n.UUID, nodes.ProvisionStateOpts{Target: step.verb}).ExtractErr()
					if gophercloud.ResponseCodeIs(err, http.StatusConflict) {
						locked.Add(1)
						t.Errorf("%s of node %s right after it showed a stable state: %v", step.verb, n.UUID, err)
						return nil
					}
					if err != nil {
						return err
					}
					if err := stable(n.UUID, step.want); err != nil {
						return err
					}
				}
				return nil
			}
			start := time.Now()
			work := make(chan int)
			var wg sync.WaitGroup
			for range clients {
				wg.Go(func() {
					for i := range work {
						if err := run(i); err != nil {
							t.Error(err)
						}
					}
				})
			}
			for i := range nodeCount {
				work <- i
			}
			close(work)
			wg.Wait()
			took := time.Since(start)
			t.Logf("%d nodes enroll -> active from %d clients: %d provision calls, %d refused as locked, %s (%.1f deploys/s)",
				nodeCount, clients, calls.Load(), locked.Load(), took.Round(time.Millisecond), float64(nodeCount)/took.Seconds())
			if locked.Load() != 0 {
				t.Fatalf("%d provision calls refused with 409", locked.Load())
			}
		})
	}
}
