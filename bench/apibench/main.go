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
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
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
	deploy  int
	gets    int
	pid     int
	crowd   time.Duration
	crowdC  int
	crowdL  int
	// crowdRate is the requests per second the crowd offers on a schedule; 0: back to back.
	crowdRate float64
	// crowdWarmup runs the crowd this long first, its numbers left out of the result.
	crowdWarmup time.Duration
	// crowdTimeline prints each crowd's latencies second by second (the warm-up's apart).
	crowdTimeline bool
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
	fs.IntVar(&cfg.deploy, "deploy", 0, "after the listings, take this many of the nodes through manage, provide and deploy\n"+
		"(fake-hardware) and report deploys per minute")
	fs.IntVar(&cfg.gets, "gets", 2000, "single-node GETs (GET /v1/nodes/<uuid>) after the listings, from -c clients")
	fs.IntVar(&cfg.pid, "pid", 0, "process id of the server (on this machine): report its VmRSS and VmHWM from /proc")
	fs.DurationVar(&cfg.crowd, "crowd", 0, "after the rest, run a crowd for this long: -crowd-c clients mixing list, detail page,\n"+
		"GET and PATCH in equal parts, and report each one's p50/p99 and the failures")
	fs.IntVar(&cfg.crowdC, "crowd-c", 200, "clients of the crowd")
	fs.IntVar(&cfg.crowdL, "crowd-limit", 100, "page size of the crowd's list and detail requests")
	fs.Float64Var(&cfg.crowdRate, "crowd-rate", 0, "requests per second the whole crowd sends, each client on a fixed schedule,\n"+
		"latency counted from when a request was due; 0: every client back to back (closed loop)")
	fs.BoolVar(&cfg.crowdTimeline, "crowd-timeline", false, "print the crowd's latencies second by second (p50, p99, slowest), the warm-up's apart")
	fs.DurationVar(&cfg.crowdWarmup, "crowd-warmup", 0, "run the crowd this long first and leave its numbers out of the RESULT line\n"+
		"(a server's first seconds of concurrent writes open its database connections)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if cfg.base == "" || cfg.n < 0 || cfg.c < 1 || cfg.rounds < 0 || cfg.limit < 1 || cfg.crowdRate < 0 || cfg.crowdWarmup < 0 || fs.NArg() != 0 {
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

	lat, uuids, elapsed, err := enrol(ctx, c, cfg)
	if err != nil {
		return err
	}
	rate := float64(cfg.n) / elapsed.Seconds()
	p50, p99 := percentile(lat, 50), percentile(lat, 99)
	fmt.Printf("enrol:    %d nodes, %d clients, %.2fs: %.1f nodes/s; create latency p50 %.1fms p99 %.1fms\n",
		cfg.n, cfg.c, elapsed.Seconds(), rate, ms(p50), ms(p99))

	var times []string
	var pageLat, pageRecv, pageDecode []time.Duration
	var firstPage []byte
	best, listed := time.Duration(0), 0
	for r := 1; r <= cfg.rounds; r++ {
		d, n, pages, err := listAll(ctx, c, cfg.limit, &pageLat, &pageRecv, &pageDecode, &firstPage)
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
	pp50, pp99 := percentile(pageLat, 50), percentile(pageLat, 99)
	fmt.Printf("pages:    %d detailed pages of up to %d nodes: p50 %.1fms p99 %.1fms\n", len(pageLat), cfg.limit, ms(pp50), ms(pp99))
	// The two parts of a page's time: until its last byte arrived (the server's work and the
	// transfer), and this client's decoding, which is the same work whatever the server.
	fmt.Printf("pages:    of which body received p50 %.1fms, client decoding p50 %.1fms\n",
		ms(percentile(pageRecv, 50)), ms(percentile(pageDecode, 50)))
	var floor time.Duration
	if len(firstPage) > 0 {
		if floor, err = pageFloor(ctx, c, firstPage, len(pageLat)); err != nil {
			return err
		}
		fmt.Printf("pages:    the first page (%d bytes) from a server that answers at once, %d times: p50 %.1fms\n",
			len(firstPage), len(pageLat), ms(floor))
	}
	var (
		gp50, gp99 time.Duration
		getRate    float64
	)
	if cfg.gets > 0 && len(uuids) > 0 {
		glat, gd, err := getMany(ctx, c, cfg, uuids)
		if err != nil {
			return err
		}
		gp50, gp99 = percentile(glat, 50), percentile(glat, 99)
		getRate = float64(len(glat)) / gd.Seconds()
		fmt.Printf("get:      %d GETs, %d clients, %.2fs: %.1f/s; latency p50 %.2fms p99 %.2fms\n",
			len(glat), cfg.c, gd.Seconds(), getRate, ms(gp50), ms(gp99))
	}
	rss, hwm := "-", "-"
	if cfg.pid > 0 {
		r, h, err := procMemory(cfg.pid)
		if err != nil {
			return err
		}
		rss, hwm = fmt.Sprintf("%.1f", float64(r)/1024), fmt.Sprintf("%.1f", float64(h)/1024)
		fmt.Printf("memory:   server pid %d holding %d nodes: VmRSS %s MiB, VmHWM %s MiB\n", cfg.pid, listed, rss, hwm)
	}
	crowdRes := ""
	if cfg.crowd > 0 && len(uuids) > 0 {
		if cfg.crowdWarmup > 0 {
			// The same crowd, its numbers printed and left out of the RESULT line.
			warm := cfg
			warm.crowd = cfg.crowdWarmup
			fmt.Printf("crowd:    warm-up, %s:\n", cfg.crowdWarmup)
			if _, err = crowd(ctx, c, warm, uuids); err != nil {
				return err
			}
		}
		if crowdRes, err = crowd(ctx, c, cfg, uuids); err != nil {
			return err
		}
	}
	deployRate := 0.0
	if cfg.deploy > 0 {
		if deployRate, err = lifecycle(ctx, c, cfg, uuids[:min(cfg.deploy, len(uuids))]); err != nil {
			return err
		}
	}
	fmt.Printf("RESULT label=%s n=%d c=%d enrol_s=%.3f enrol_rate=%.1f p50_ms=%.1f p99_ms=%.1f list_s=%s list_best_s=%.3f listed=%d deploys_per_min=%.1f"+
		" page_p50_ms=%.1f page_p99_ms=%.1f page_recv_p50_ms=%.1f page_decode_p50_ms=%.1f page_floor_p50_ms=%.1f get_rate=%.1f get_p50_ms=%.2f get_p99_ms=%.2f rss_mib=%s hwm_mib=%s%s\n",
		strings.ReplaceAll(cfg.label, " ", "_"), cfg.n, cfg.c, elapsed.Seconds(), rate, ms(p50), ms(p99),
		strings.Join(times, ","), best.Seconds(), listed, deployRate, ms(pp50), ms(pp99),
		ms(percentile(pageRecv, 50)), ms(percentile(pageDecode, 50)), ms(floor), getRate, ms(gp50), ms(gp99), rss, hwm, crowdRes)
	return nil
}

// lifecycle takes nodes through manage and provide, then times their deployment to active
// (requests from cfg.c clients, then polling until every node is active) and returns deploys
// per minute.
func lifecycle(ctx context.Context, c *client, cfg config, uuids []string) (float64, error) {
	phase := func(verb, want string) (time.Duration, error) {
		start := time.Now()
		if err := each(ctx, cfg.c, uuids, func(u string) error {
			body, _ := json.Marshal(map[string]string{"target": verb})
			for attempt := 0; ; attempt++ {
				st, b, err := c.do(ctx, "PUT", "/v1/nodes/"+u+"/states/provision", body)
				if err != nil {
					return err
				}
				if st == http.StatusAccepted {
					return nil
				}
				// 409: the node is still locked by the previous step; 503: the conductor is busy.
				if (st == http.StatusConflict || st == http.StatusServiceUnavailable) && attempt < 600 {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				return fmt.Errorf("%s %s: status %d: %.300s", verb, u, st, b)
			}
		}); err != nil {
			return 0, err
		}
		want1 := map[string]bool{}
		for _, u := range uuids {
			want1[u] = true
		}
		for {
			states, err := provisionStates(ctx, c)
			if err != nil {
				return 0, err
			}
			done, failed := 0, 0
			for u := range want1 {
				switch states[u] {
				case want:
					done++
				case "deploy failed", "clean failed", "error", "enroll":
					failed++
				}
			}
			if failed > 0 {
				return 0, fmt.Errorf("%d nodes failed during %s", failed, verb)
			}
			if done == len(want1) {
				return time.Since(start), nil
			}
			if time.Since(start) > 30*time.Minute {
				return 0, fmt.Errorf("%s: %d of %d nodes %s after 30 minutes", verb, done, len(want1), want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	for _, p := range [][2]string{{"manage", "manageable"}, {"provide", "available"}} {
		d, err := phase(p[0], p[1])
		if err != nil {
			return 0, err
		}
		fmt.Printf("%-9s %d nodes in %.2fs\n", p[0]+":", len(uuids), d.Seconds())
	}
	d, err := phase("active", "active")
	if err != nil {
		return 0, err
	}
	rate := float64(len(uuids)) / d.Minutes()
	fmt.Printf("deploy:   %d nodes to active in %.2fs: %.1f deploys/min\n", len(uuids), d.Seconds(), rate)
	return rate, nil
}

// each runs fn on every item with n workers and returns the first error.
func each(ctx context.Context, n int, items []string, fn func(string) error) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(items))
	jobs := make(chan string)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range jobs {
				if err := fn(it); err != nil {
					errs <- err
				}
			}
		}()
	}
	for _, it := range items {
		jobs <- it
	}
	close(jobs)
	wg.Wait()
	close(errs)
	return <-errs
}

// provisionStates reads every node's provision state.
func provisionStates(ctx context.Context, c *client) (map[string]string, error) {
	out := map[string]string{}
	path := "/v1/nodes?fields=uuid,provision_state&limit=1000"
	for path != "" {
		st, b, err := c.do(ctx, "GET", path, nil)
		if err != nil {
			return nil, err
		}
		if st != http.StatusOK {
			return nil, fmt.Errorf("list states: status %d", st)
		}
		var page struct {
			Nodes []struct {
				UUID  string `json:"uuid"`
				State string `json:"provision_state"`
			} `json:"nodes"`
			Next string `json:"next"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return nil, err
		}
		for _, n := range page.Nodes {
			out[n.UUID] = n.State
		}
		path = ""
		if page.Next != "" && len(page.Nodes) > 0 {
			if i := strings.Index(page.Next, "/v1/"); i >= 0 {
				path = page.Next[i:]
			}
		}
	}
	return out, nil
}

// enrol creates cfg.n nodes with cfg.c workers and returns every create's latency.
func enrol(ctx context.Context, c *client, cfg config) ([]time.Duration, []string, time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan int)
	lat := make([]time.Duration, cfg.n)
	uuids := make([]string, cfg.n)
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
				default:
					var n struct {
						UUID string `json:"uuid"`
					}
					json.Unmarshal(b, &n)
					uuids[i] = n.UUID
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
		return nil, nil, 0, fmt.Errorf("%d creates failed; first: %w", failed.Load(), firstErr)
	}
	return lat, uuids, time.Since(start), nil
}

// getMany reads cfg.gets nodes by UUID (cycling through uuids) with cfg.c clients and returns
// each GET's latency and the elapsed time.
func getMany(ctx context.Context, c *client, cfg config, uuids []string) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, cfg.gets)
	idx := make([]string, cfg.gets)
	for i := range idx {
		idx[i] = strconv.Itoa(i)
	}
	start := time.Now()
	err := each(ctx, cfg.c, idx, func(s string) error {
		i, _ := strconv.Atoi(s)
		u := uuids[i%len(uuids)]
		t := time.Now()
		st, b, err := c.do(ctx, "GET", "/v1/nodes/"+u, nil)
		lat[i] = time.Since(t)
		if err != nil {
			return fmt.Errorf("GET node %s: %w", u, err)
		}
		if st != http.StatusOK {
			return fmt.Errorf("GET node %s: status %d: %.300s", u, st, b)
		}
		return nil
	})
	return lat, time.Since(start), err
}

// procMemory reads VmRSS and VmHWM (KiB) of a process from /proc/PID/status.
func procMemory(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read server memory: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = v
		case "VmHWM:":
			hwm = v
		}
	}
	return rss, hwm, nil
}

// detailPage is what a client decodes from a detailed node page.
type detailPage struct {
	Nodes []json.RawMessage `json:"nodes"`
	Next  string            `json:"next"`
}

// pageTime is a page's time: until its last byte arrived, and in all (decoding included).
type pageTime struct{ received, total time.Duration }

// readPage GETs path, reads the body and decodes it as a detailed node page.
func readPage(ctx context.Context, c *client, path string) (detailPage, []byte, pageTime, error) {
	var page detailPage
	t := time.Now()
	st, b, err := c.do(ctx, "GET", path, nil)
	if err != nil {
		return page, nil, pageTime{}, err
	}
	if st != http.StatusOK {
		return page, nil, pageTime{}, fmt.Errorf("GET %s: status %d: %.300s", path, st, b)
	}
	got := time.Now()
	if err := json.Unmarshal(b, &page); err != nil {
		return page, nil, pageTime{}, fmt.Errorf("GET %s: %w", path, err)
	}
	return page, b, pageTime{received: got.Sub(t), total: time.Since(t)}, nil
}

// listAll reads /v1/nodes/detail page by page and returns the time, nodes and pages read.
// Each page's time (request, reading and decoding) is appended to lat. The first page's body
// is kept in first.
func listAll(ctx context.Context, c *client, limit int, lat, recv, decode *[]time.Duration, first *[]byte) (time.Duration, int, int, error) {
	start := time.Now()
	path := fmt.Sprintf("/v1/nodes/detail?limit=%d", limit)
	n, pages := 0, 0
	for path != "" {
		page, b, took, err := readPage(ctx, c, path)
		if err != nil {
			return 0, 0, 0, err
		}
		if pages == 0 {
			*first = b
		}
		*lat = append(*lat, took.total)
		*recv = append(*recv, took.received)
		*decode = append(*decode, took.total-took.received)
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

// pageFloor serves body from memory on a loopback port of this process, with its length, and
// reads it count times as listAll reads a page (readPage: request, reading, decoding), and returns
// the p50: a page's time from a server that takes no time, the client's own share. A target's
// page time over it is the most any server could gain on that target.
func pageFloor(ctx context.Context, c *client, body []byte, count int) (time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("page floor: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	local := &client{http: c.http, base: "http://" + ln.Addr().String(), version: c.version}
	lat := make([]time.Duration, 0, count)
	for range count {
		_, _, took, err := readPage(ctx, local, "/v1/nodes/detail")
		if err != nil {
			return 0, fmt.Errorf("page floor: %w", err)
		}
		lat = append(lat, took.total)
	}
	return percentile(lat, 50), nil
}
