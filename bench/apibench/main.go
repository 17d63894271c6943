// Command apibench measures an Ironic-compatible API (Ironwork or OpenStack Ironic): it enrols
// N fake-hardware nodes with C concurrent clients, then reads the whole node list with
// GET /v1/nodes/detail?limit=L, following "next" links, R times. It prints the enrol rate, the
// p50/p99 create latency and the time of each full listing, and ends with one machine-readable
// "RESULT key=value ..." line (bench/api.sh collects those).
//
// It only talks HTTP to the URL it is given; it starts and stops nothing.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const usageText = `Usage: go run ./bench/apibench -url URL [flags]

Enrols -n fake-hardware nodes (each with a name and a few properties) through POST /v1/nodes
with -c concurrent clients, then lists every node through GET /v1/nodes/detail?limit=L,
following "next" links, -rounds times. Prints the enrol rate (nodes/s), the p50 and p99
create latency, the time of each full detailed listing and the number of nodes listed,
then a "RESULT ..." line for scripts. Use an empty server: the listing counts every node.
Exit status 1 when a request fails.

Flags:
`

type config struct {
	base    string
	n, c    int
	rounds  int
	limit   int
	version string
	prefix  string
	label   string
	timeout time.Duration
}

func main() {
	var cfg config
	fs := flag.NewFlagSet("apibench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.base, "url", "", "base URL of the API, e.g. http://127.0.0.1:6385 (required)")
	fs.IntVar(&cfg.n, "n", 10000, "nodes to enrol")
	fs.IntVar(&cfg.c, "c", 16, "concurrent clients during enrolment")
	fs.IntVar(&cfg.rounds, "rounds", 3, "full detailed listings after enrolment")
	fs.IntVar(&cfg.limit, "limit", 1000, "page size of the listing (Ironic's default max_limit is 1000)")
	fs.StringVar(&cfg.version, "version", "1.82", "X-OpenStack-Ironic-API-Version sent with every request")
	fs.StringVar(&cfg.prefix, "prefix", "", "node name prefix (default bench-<unix time>-)")
	fs.StringVar(&cfg.label, "label", "", "label of the RESULT line (default: the URL)")
	fs.DurationVar(&cfg.timeout, "timeout", 120*time.Second, "timeout of each request")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if cfg.base == "" || cfg.n < 0 || cfg.c < 1 || cfg.rounds < 0 || cfg.limit < 1 || fs.NArg() != 0 {
		fs.Usage()
		os.Exit(2)
	}
	cfg.base = strings.TrimRight(cfg.base, "/")
	if cfg.prefix == "" {
		cfg.prefix = fmt.Sprintf("bench-%d-", time.Now().Unix())
	}
	if cfg.label == "" {
		cfg.label = cfg.base
	}
	if err := run(context.Background(), cfg); err != nil {
		fmt.Fprintln(os.Stderr, "apibench:", err)
		os.Exit(1)
	}
}

type client struct {
	http    *http.Client
	base    string
	version string
}

func (c *client) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-OpenStack-Ironic-API-Version", c.version)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func run(ctx context.Context, cfg config) error {
	c := &client{
		http: &http.Client{Timeout: cfg.timeout, Transport: &http.Transport{
			MaxIdleConns: cfg.c * 2, MaxIdleConnsPerHost: cfg.c * 2, IdleConnTimeout: 90 * time.Second,
		}},
		base: cfg.base, version: cfg.version,
	}
	if st, _, err := c.do(ctx, "GET", "/", nil); err != nil || st != http.StatusOK {
		return fmt.Errorf("%s does not answer GET / (status %d, %v)", cfg.base, st, err)
	}
	fmt.Printf("target:   %s (X-OpenStack-Ironic-API-Version %s)\n", cfg.base, cfg.version)

	lat, elapsed, err := enrol(ctx, c, cfg)
	if err != nil {
		return err
	}
	rate := float64(cfg.n) / elapsed.Seconds()
	p50, p99 := percentile(lat, 50), percentile(lat, 99)
	fmt.Printf("enrol:    %d nodes, %d clients, %.2fs: %.1f nodes/s; create latency p50 %.1fms p99 %.1fms\n",
		cfg.n, cfg.c, elapsed.Seconds(), rate, ms(p50), ms(p99))

	var times []string
	best, listed := time.Duration(0), 0
	for r := 1; r <= cfg.rounds; r++ {
		d, n, pages, err := listAll(ctx, c, cfg.limit)
		if err != nil {
			return fmt.Errorf("listing round %d: %w", r, err)
		}
		fmt.Printf("list %d:   %d nodes in %d pages of %d, %.3fs (%.0f nodes/s)\n",
			r, n, pages, cfg.limit, d.Seconds(), float64(n)/d.Seconds())
		times = append(times, fmt.Sprintf("%.3f", d.Seconds()))
		if best == 0 || d < best {
			best = d
		}
		listed = n
	}
	fmt.Printf("RESULT label=%s n=%d c=%d enrol_s=%.3f enrol_rate=%.1f p50_ms=%.1f p99_ms=%.1f list_s=%s list_best_s=%.3f listed=%d\n",
		strings.ReplaceAll(cfg.label, " ", "_"), cfg.n, cfg.c, elapsed.Seconds(), rate, ms(p50), ms(p99),
		strings.Join(times, ","), best.Seconds(), listed)
	return nil
}

// enrol creates cfg.n nodes with cfg.c workers and returns every create's latency.
func enrol(ctx context.Context, c *client, cfg config) ([]time.Duration, time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan int)
	lat := make([]time.Duration, cfg.n)
	var (
		failed   atomic.Int64
		firstErr error
		once     sync.Once
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		once.Do(func() { firstErr = err; cancel() })
		failed.Add(1)
	}
	start := time.Now()
	for w := 0; w < cfg.c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				body, _ := json.Marshal(map[string]any{
					"name":           fmt.Sprintf("%s%06d", cfg.prefix, i),
					"driver":         "fake-hardware",
					"resource_class": "bench",
					"properties": map[string]any{
						"cpus": 8, "memory_mb": 32768, "local_gb": 500, "cpu_arch": "x86_64",
					},
				})
				t := time.Now()
				st, b, err := c.do(ctx, "POST", "/v1/nodes", body)
				lat[i] = time.Since(t)
				switch {
				case err != nil:
					fail(fmt.Errorf("create node %d: %w", i, err))
				case st != http.StatusCreated:
					fail(fmt.Errorf("create node %d: status %d: %.300s", i, st, b))
				}
			}
		}()
	}
	for i := 0; i < cfg.n && ctx.Err() == nil; i++ {
		select {
		case jobs <- i:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return nil, 0, fmt.Errorf("%d creates failed; first: %w", failed.Load(), firstErr)
	}
	return lat, time.Since(start), nil
}

// listAll reads /v1/nodes/detail page by page and returns the time, nodes and pages read.
func listAll(ctx context.Context, c *client, limit int) (time.Duration, int, int, error) {
	start := time.Now()
	path := fmt.Sprintf("/v1/nodes/detail?limit=%d", limit)
	n, pages := 0, 0
	for path != "" {
		st, b, err := c.do(ctx, "GET", path, nil)
		if err != nil {
			return 0, 0, 0, err
		}
		if st != http.StatusOK {
			return 0, 0, 0, fmt.Errorf("GET %s: status %d: %.300s", path, st, b)
		}
		var page struct {
			Nodes []json.RawMessage `json:"nodes"`
			Next  string            `json:"next"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return 0, 0, 0, fmt.Errorf("GET %s: %w", path, err)
		}
		n += len(page.Nodes)
		pages++
		path = ""
		if page.Next != "" && len(page.Nodes) > 0 {
			u, err := url.Parse(page.Next)
			if err != nil {
				return 0, 0, 0, fmt.Errorf("bad next link %q: %w", page.Next, err)
			}
			path = u.RequestURI() // always back to the URL we were given
		}
		if pages > 1_000_000 {
			return 0, 0, 0, errors.New("more than a million pages: next links loop")
		}
	}
	return time.Since(start), n, pages, nil
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s))*p/100+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
