package rpc_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/rpc"
)

// BenchmarkRPCCall measures one SetMaintenance call from an API-only router to a real
// conductor over loopback, with and without sealing: what sealing costs per call.
func BenchmarkRPCCall(b *testing.B) {
	for _, sealed := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "sealed"}[sealed]
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			ts, store, c := newConductor(b)
			url := ts.URL
			var sealer *rpc.Sealer
			if sealed {
				var err error
				if sealer, err = rpc.NewSealer([]byte("0123456789abcdef0123456789abcdef")); err != nil {
					b.Fatal(err)
				}
				s := httptest.NewServer(sealer.Handler(rpc.Handler(c, slog.New(slog.DiscardHandler)), slog.New(slog.DiscardHandler)))
				b.Cleanup(s.Close)
				url = s.URL
			}
			n := remoteNode(ctx, b, store, url, "bench-node")
			r := rpc.NewRouter(nil, store, conductor.NewRing(), "api-only", slog.New(slog.DiscardHandler))
			if sealed {
				r.Secure(sealer, nil)
			}
			if err := r.Refresh(ctx, 60e9); err != nil {
				b.Fatal(err)
			}
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := conductor.Call(ctx, r, conductor.OpValidate, conductor.NodeRef{Node: n.UUID}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
