package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/ironwork/ironwork/bench/internal/pace"
)

// kinds of requests of the read mix, with their share in percent.
var mix = []struct {
	name  string
	share int
}{{"get", 50}, {"list", 25}, {"detail", 25}}

func runLoad(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fleet load", flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:6385", "API base URL (several: comma-separated, used in turn)")
	clients := fs.Int("c", 200, "concurrent clients, each sending one request after the other")
	dur := fs.Duration("d", 60*time.Second, "how long to load")
	page := fs.Int("limit", 100, "page size of list and detail requests")
	rate := fs.Float64("rate", 0, "requests per second of all clients together, each client on a fixed schedule and a\n"+
		"request's latency counted from when it was due (package pace); 0: each client sends when answered")
	warmup := fs.Duration("warmup", 0, "load this long first, its requests counted apart (a server's database connections\n"+
		"open in its first seconds of load)")
	timeline := fs.Bool("timeline", false, "print the latencies second by second (p50, p99, slowest), warm-up included")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rate < 0 || *clients < 1 || *warmup < 0 {
		return fmt.Errorf("fleet load: -rate and -warmup must be 0 or more and -c 1 or more")
	}
	a := newAPI(*url, *clients)
	// A sample of node UUIDs to GET and to start pages at.
	st, b, err := a.do(ctx, http.MethodGet, "/v1/nodes?limit=1000&fields=uuid", nil)
	if err != nil || st != http.StatusOK {
		return fmt.Errorf("list node UUIDs: status %d: %v", st, err)
	}
	var list struct {
		Nodes []struct {
			UUID string `json:"uuid"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(b, &list); err != nil || len(list.Nodes) == 0 {
		return fmt.Errorf("list node UUIDs: no nodes (%v)", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *warmup+*dur)
	defer cancel()
	type sample struct {
		kind int
		at   time.Duration // when it was due, from the start
		lat  time.Duration
		ok   bool
		warm bool // sent during the warm-up
	}
	results := make([][]sample, *clients)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range *clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(c), 21))
			sched := pace.New(start, *rate, c, *clients) // nil: closed loop
			for {
				t, ok := sched.Next(ctx, time.Time{})
				if !ok {
					return
				}
				k, x := 0, r.IntN(100)
				for k < len(mix)-1 && x >= mix[k].share {
					x -= mix[k].share
					k++
				}
				id := list.Nodes[r.IntN(len(list.Nodes))].UUID
				path := "/v1/nodes/" + id
				switch mix[k].name {
				case "list":
					path = fmt.Sprintf("/v1/nodes?limit=%d&marker=%s", *page, id)
				case "detail":
					path = fmt.Sprintf("/v1/nodes/detail?limit=%d&marker=%s", *page, id)
				}
				st, _, err := a.do(context.WithoutCancel(ctx), http.MethodGet, path, nil)
				results[c] = append(results[c], sample{kind: k, at: t.Sub(start), lat: time.Since(t), ok: err == nil && st == http.StatusOK,
					warm: t.Before(start.Add(*warmup))})
			}
		}()
	}
	wg.Wait()
	took := time.Since(start) - *warmup
	if *timeline {
		var tl pace.Timeline
		for _, rs := range results {
			for _, s := range rs {
				tl.Add(s.at, s.lat)
			}
		}
		tl.Write(os.Stdout, "timeline: ")
	}
	all := map[int][]time.Duration{}
	var warm []time.Duration
	failed, total, warmFailed := 0, 0, 0
	for _, rs := range results {
		for _, s := range rs {
			if s.warm {
				warm = append(warm, s.lat)
				if !s.ok {
					warmFailed++
				}
				continue
			}
			total++
			if !s.ok {
				failed++
			}
			all[s.kind] = append(all[s.kind], s.lat)
			all[-1] = append(all[-1], s.lat)
		}
	}
	fmt.Printf("RESULT clients=%d offered_per_s=%.0f seconds=%.1f requests=%d failed=%d per_s=%.0f", *clients, *rate, took.Seconds(),
		total, failed, float64(total)/took.Seconds())
	for k := -1; k < len(mix); k++ {
		name := "all"
		if k >= 0 {
			name = mix[k].name
		}
		l := all[k]
		slices.Sort(l)
		fmt.Printf(" %s_p50_ms=%.1f %s_p99_ms=%.1f", name, pct(l, 50), name, pct(l, 99))
	}
	if *warmup > 0 {
		slices.Sort(warm)
		fmt.Printf(" warmup_s=%.0f warmup_requests=%d warmup_failed=%d warmup_p50_ms=%.1f warmup_p99_ms=%.1f", warmup.Seconds(), len(warm),
			warmFailed, pct(warm, 50), pct(warm, 99))
	}
	fmt.Println()
	if failed+warmFailed > 0 {
		return fmt.Errorf("%d of %d requests failed, and %d of %d in the warm-up", failed, total, warmFailed, len(warm))
	}
	return nil
}

// pct is the p-th percentile of sorted latencies, in milliseconds.
func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return float64(sorted[i]) / float64(time.Millisecond)
}
