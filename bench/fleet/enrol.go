package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// api is a small client of an Ironic-compatible API.
type api struct {
	http  *http.Client
	bases []string
	next  atomic.Uint64
}

func newAPI(urls string, clients int) *api {
	a := &api{http: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		MaxIdleConns: clients * 2, MaxIdleConnsPerHost: clients * 2, IdleConnTimeout: 90 * time.Second}}}
	for _, u := range strings.Split(urls, ",") {
		a.bases = append(a.bases, strings.TrimRight(u, "/"))
	}
	return a
}

// do sends one request to the next API server in turn and returns the status and body.
func (a *api) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	base := a.bases[a.next.Add(1)%uint64(len(a.bases))]
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-OpenStack-Ironic-API-Version", "1.82")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func runEnrol(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fleet enrol", flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:6385", "API base URL (several: comma-separated, used in turn)")
	nodesFile := fs.String("nodes", "", "file of node bodies, one JSON object a line (fleet bmcs writes it)")
	fake := fs.Int("fake", 0, "enrol this many fake-hardware nodes instead of -nodes")
	prefix := fs.String("prefix", "fake-", "name prefix of -fake nodes")
	clients := fs.Int("c", 16, "concurrent clients")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var bodies [][]byte
	if *nodesFile != "" {
		f, err := os.Open(*nodesFile)
		if err != nil {
			return fmt.Errorf("open the nodes file: %w", err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			bodies = append(bodies, append([]byte(nil), sc.Bytes()...))
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("read the nodes file: %w", err)
		}
	}
	for i := range *fake {
		b, _ := json.Marshal(map[string]any{"name": fmt.Sprintf("%s%06d", *prefix, i), "driver": "fake-hardware",
			"resource_class": "fleet", "properties": map[string]any{"cpus": 8, "memory_mb": 32768, "local_gb": 500, "cpu_arch": "x86_64"}})
		bodies = append(bodies, b)
	}
	a := newAPI(*url, *clients)
	jobs := make(chan []byte)
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	for range *clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range jobs {
				st, out, err := a.do(ctx, http.MethodPost, "/v1/nodes", b)
				if err == nil && st != http.StatusCreated {
					err = fmt.Errorf("status %d: %.200s", st, out)
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	for _, b := range bodies {
		select {
		case jobs <- b:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	took := time.Since(start)
	fmt.Printf("RESULT enrolled=%d failed=%d seconds=%.1f per_s=%.0f\n", len(bodies)-int(failed.Load()), failed.Load(),
		took.Seconds(), float64(len(bodies))/took.Seconds())
	if err, _ := firstErr.Load().(error); err != nil {
		return fmt.Errorf("%d creates failed; first: %w", failed.Load(), err)
	}
	return ctx.Err()
}
