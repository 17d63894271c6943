package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/httpapi"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// BenchmarkListNodesDetail measures GET /v1/nodes/detail?limit=1000 over 1000 enrolled nodes,
// client decoding excluded (the body is read and discarded), served from the node cache
// (every node cached: the steady state of a fleet listed again and again) and without it.
func BenchmarkListNodesDetail(b *testing.B) { cachedAndUncached(b, benchListNodesDetail) }

func benchListNodesDetail(b *testing.B, mutate ...func(*httpapi.Options)) {
	ts, store := newAPI(b, mutate...)
	enrolBenchNodes(b, store, 1000)
	b.ResetTimer()
	var bytes int64
	for b.Loop() {
		var err error
		if bytes, err = benchSend(ts, "GET", "/v1/nodes/detail?limit=1000", "", http.StatusOK); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(bytes), "bytes/page")
}

// BenchmarkGetNode measures GET /v1/nodes/{uuid} from 16 clients over 1000 enrolled nodes,
// each fetched by UUID in turn, with the node cache (warmed by one detailed listing, as a fleet
// that is listed and read is) and without it.
func BenchmarkGetNode(b *testing.B) { cachedAndUncached(b, benchGetNode) }

// cachedAndUncached runs bench with the node cache (default options) and without it.
func cachedAndUncached(b *testing.B, bench func(*testing.B, ...func(*httpapi.Options))) {
	b.Run("cached", func(b *testing.B) { bench(b) })
	b.Run("uncached", func(b *testing.B) {
		bench(b, func(o *httpapi.Options) { o.NodeCacheBytes = -1 })
	})
}

func benchGetNode(b *testing.B, mutate ...func(*httpapi.Options)) {
	ts, store := newAPI(b, mutate...)
	uuids := enrolBenchNodes(b, store, 1000)
	if _, err := benchSend(ts, "GET", "/v1/nodes/detail?limit=1000", "", http.StatusOK); err != nil {
		b.Fatal(err)
	}
	ts.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	var next atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := benchSend(ts, "GET", "/v1/nodes/"+uuids[next.Add(1)%int64(len(uuids))], "", http.StatusOK); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCreateNode measures POST /v1/nodes (enrolment of a fake-hardware node, as
// bench/apibench sends it) from 16 clients.
func BenchmarkCreateNode(b *testing.B) {
	ts, _ := newAPI(b)
	ts.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	var next atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := fmt.Sprintf(`{"name":"bench-%07d","driver":"fake-hardware","resource_class":"bench",`+
				`"properties":{"cpus":8,"memory_mb":32768,"local_gb":500,"cpu_arch":"x86_64"}}`, next.Add(1))
			if _, err := benchSend(ts, "POST", "/v1/nodes", body, http.StatusCreated); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// enrolBenchNodes stores count available fake-hardware nodes with BMC credentials and returns
// their UUIDs.
func enrolBenchNodes(b *testing.B, store *sqlstore.Store, count int) []string {
	b.Helper()
	uuids := make([]string, count)
	for i := range uuids {
		n := &ironwork.Node{Name: fmt.Sprintf("bench-%04d", i), Driver: "fake-hardware", ProvisionState: ironwork.Available,
			ResourceClass: "baremetal", Properties: ironwork.JSONObject{"cpus": 8.0, "memory_mb": 65536.0, "local_gb": 500.0, "cpu_arch": "x86_64"},
			DriverInfo: ironwork.JSONObject{"ipmi_address": "10.0.0.1", "ipmi_username": "admin", "ipmi_password": "secret"}}
		if err := ironwork.DefaultDriverConfig().ResolveInterfaces(n); err != nil {
			b.Fatal(err)
		}
		if err := store.CreateNode(context.Background(), n); err != nil {
			b.Fatal(err)
		}
		uuids[i] = n.UUID
	}
	return uuids
}

// benchSend sends a request at microversion 1.82 (a JSON body unless body is ""), reads and
// discards the response, and returns its size; a status other than want is an error.
func benchSend(ts *httptest.Server, method, path, body string, want int) (int64, error) {
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-OpenStack-Ironic-API-Version", "1.82")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && resp.StatusCode != want {
		err = fmt.Errorf("%s %s: status %d, want %d", method, path, resp.StatusCode, want)
	}
	return n, err
}
