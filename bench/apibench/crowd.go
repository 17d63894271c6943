package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ironwork/ironwork/bench/internal/pace"
)

// crowdKinds are the requests of the crowd, in equal parts.
var crowdKinds = []string{"list", "detail", "get", "patch"}

// crowd runs cfg.crowdC clients for cfg.crowd, each sending list, detail page, GET and PATCH
// requests in turn (on random nodes and from random markers), prints each kind's p50/p99 and
// the failures, and returns the fields it adds to the RESULT line. A failure (a transport
// error or an unexpected status) is counted, not fatal: a server that fails under the crowd
// shows it in the numbers.
//
// With cfg.crowdRate 0 the clients send back to back (closed loop): the server's saturation
// throughput. With a rate, each client sends on a fixed schedule (package pace): the latency
// of a given load.
func crowd(ctx context.Context, base *client, cfg config, uuids []string) (string, error) {
	c := &client{
		http: &http.Client{Timeout: cfg.timeout, Transport: &http.Transport{
			MaxIdleConns: cfg.crowdC * 2, MaxIdleConnsPerHost: cfg.crowdC * 2, IdleConnTimeout: 90 * time.Second,
		}},
		base: base.base, version: base.version,
	}
	type sample struct {
		kind int
		at   time.Duration // when it was due, from the crowd's start
		d    time.Duration
	}
	var (
		mu       sync.Mutex
		samples  []sample
		failures atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
	)
	deadline := time.Now().Add(cfg.crowd)
	start := time.Now()
	for w := range cfg.crowdC {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			var mine []sample
			sched := pace.New(start, cfg.crowdRate, w, cfg.crowdC)
			for i := w; time.Now().Before(deadline); i++ {
				t, ok := sched.Next(ctx, deadline)
				if !ok {
					break
				}
				kind := i % len(crowdKinds)
				u := uuids[rng.IntN(len(uuids))]
				method, path, want := "GET", "", http.StatusOK
				var body []byte
				switch crowdKinds[kind] {
				case "list":
					path = fmt.Sprintf("/v1/nodes?limit=%d&marker=%s", cfg.crowdL, u)
				case "detail":
					path = fmt.Sprintf("/v1/nodes/detail?limit=%d&marker=%s", cfg.crowdL, u)
				case "get":
					path = "/v1/nodes/" + u
				case "patch":
					method, path = "PATCH", "/v1/nodes/"+u
					body = fmt.Appendf(nil, `[{"op":"add","path":"/extra/crowd","value":"w%d-%d"}]`, w, i)
				}
				st, b, err := c.do(ctx, method, path, body)
				d := time.Since(t)
				if err == nil && st != want {
					err = fmt.Errorf("%s %s: status %d: %.200s", method, path, st, b)
				}
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				mine = append(mine, sample{kind, t.Sub(start), d})
			}
			mu.Lock()
			samples = append(samples, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	total := len(samples) + int(failures.Load())
	offered := "back to back"
	if cfg.crowdRate > 0 {
		offered = fmt.Sprintf("offered %.0f/s", cfg.crowdRate)
	}
	fmt.Printf("crowd:    %d clients (%s), %.1fs: %d requests, %.1f/s, %d failed\n",
		cfg.crowdC, offered, elapsed.Seconds(), total, float64(total)/elapsed.Seconds(), failures.Load())
	if e := firstErr.Load(); e != nil {
		fmt.Printf("crowd:    first failure: %s\n", e)
	}
	if cfg.crowdTimeline {
		var tl pace.Timeline
		for _, s := range samples {
			tl.Add(s.at, s.d)
		}
		tl.Write(os.Stdout, "crowd:    ")
	}
	var res strings.Builder
	fmt.Fprintf(&res, " crowd_c=%d crowd_offered=%.0f crowd_rps=%.1f crowd_failed=%d", cfg.crowdC, cfg.crowdRate,
		float64(total)/elapsed.Seconds(), failures.Load())
	for k, name := range crowdKinds {
		var lat []time.Duration
		for _, s := range samples {
			if s.kind == k {
				lat = append(lat, s.d)
			}
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		p50, p99 := percentile(lat, 50), percentile(lat, 99)
		fmt.Printf("crowd:    %-7s %6d ok, p50 %7.1fms p99 %7.1fms\n", name, len(lat), ms(p50), ms(p99))
		fmt.Fprintf(&res, " crowd_%s_p50_ms=%.1f crowd_%s_p99_ms=%.1f", name, ms(p50), name, ms(p99))
	}
	return res.String(), nil
}
