// Command lockbench runs the "stable means free" mix against an Ironic API (Ironwork or the
// real Ironic): N fake-hardware nodes from C clients, each taken through manage, provide and
// deploy, every verb sent as soon as the node shows the previous stable state with no target.
// It counts the verbs refused with 409 (node locked) and reports the throughput. A refused
// verb is retried after 50 ms, so the run completes either way; the count is the result.
//
//	lockbench -url http://127.0.0.1:6385 -n 300 -c 16 -label ironwork
//
// It talks only to the URL it is given (loopback in bench/locks.sh).
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
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type config struct {
	url, label string
	n, c       int
	timeout    time.Duration
	stage      time.Duration
}

func main() {
	var cfg config
	fs := flag.NewFlagSet("lockbench", flag.ExitOnError)
	fs.StringVar(&cfg.url, "url", "http://127.0.0.1:6385", "API base URL")
	fs.StringVar(&cfg.label, "label", "target", "name of the target in the RESULT line")
	fs.IntVar(&cfg.n, "n", 300, "nodes, each deployed once")
	fs.IntVar(&cfg.c, "c", 16, "concurrent clients")
	fs.DurationVar(&cfg.timeout, "timeout", 60*time.Second, "HTTP request timeout")
	fs.DurationVar(&cfg.stage, "stage-timeout", 10*time.Minute, "longest a node may take to reach one stable state")
	_ = fs.Parse(os.Args[1:])
	if err := run(context.Background(), cfg); err != nil {
		fmt.Fprintln(os.Stderr, "lockbench:", err)
		os.Exit(1)
	}
}

type client struct {
	http *http.Client
	base string
}

func (c *client) do(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-OpenStack-Ironic-API-Version", "1.82") // the real Ironic's (21.4) maximum
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

// counts are the outcome of a run.
type counts struct {
	calls, locked, busy atomic.Int64
	mu                  sync.Mutex
	lockedBy            map[string]int // verb -> 409s
	messages            map[string]int // distinct 409 messages, node UUIDs blanked
}

func (k *counts) refused(verb, msg string) {
	k.locked.Add(1)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.lockedBy[verb]++
	if i := strings.Index(msg, "Node "); i >= 0 && len(msg) >= i+5+36 {
		msg = msg[:i+5] + "<uuid>" + msg[i+5+36:]
	}
	k.messages[msg]++
}

type node struct {
	UUID      string `json:"uuid"`
	State     string `json:"provision_state"`
	Target    string `json:"target_provision_state"`
	LastError string `json:"last_error"`
}

func errorMessage(body []byte) string {
	var e struct {
		ErrorMessage string `json:"error_message"`
	}
	if json.Unmarshal(body, &e) == nil && e.ErrorMessage != "" {
		var inner struct {
			Faultstring string `json:"faultstring"`
		}
		if json.Unmarshal([]byte(e.ErrorMessage), &inner) == nil && inner.Faultstring != "" {
			return inner.Faultstring
		}
		return e.ErrorMessage
	}
	return strings.TrimSpace(string(body))
}

func run(ctx context.Context, cfg config) error {
	c := &client{base: strings.TrimRight(cfg.url, "/"), http: &http.Client{Timeout: cfg.timeout,
		Transport: &http.Transport{MaxIdleConns: cfg.c * 2, MaxIdleConnsPerHost: cfg.c * 2}}}
	k := &counts{lockedBy: map[string]int{}, messages: map[string]int{}}
	tag := fmt.Sprintf("lb%d", time.Now().UnixNano()%1e9)

	// verb sends one provision verb; 409 (locked) and 503 (busy) are counted and retried.
	verb := func(uuid, target string) error {
		for attempt := 0; ; attempt++ {
			k.calls.Add(1)
			st, body, err := c.do(ctx, http.MethodPut, "/v1/nodes/"+uuid+"/states/provision", map[string]string{"target": target})
			if err != nil {
				return fmt.Errorf("%s %s: %w", target, uuid, err)
			}
			switch {
			case st == http.StatusAccepted:
				return nil
			case st == http.StatusConflict:
				k.refused(target, errorMessage(body))
			case st == http.StatusServiceUnavailable:
				k.busy.Add(1)
			default:
				return fmt.Errorf("%s %s: HTTP %d: %s", target, uuid, st, errorMessage(body))
			}
			if attempt >= 1200 {
				return fmt.Errorf("%s %s: still refused after %d attempts", target, uuid, attempt)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	stable := func(uuid, want string) error {
		deadline := time.Now().Add(cfg.stage)
		for {
			st, body, err := c.do(ctx, http.MethodGet, "/v1/nodes/"+uuid+"?fields=uuid,provision_state,target_provision_state,last_error", nil)
			if err != nil {
				return err
			}
			if st != http.StatusOK {
				return fmt.Errorf("get %s: HTTP %d: %s", uuid, st, errorMessage(body))
			}
			var n node
			if err := json.Unmarshal(body, &n); err != nil {
				return err
			}
			if n.State == want && n.Target == "" {
				return nil
			}
			if strings.HasSuffix(n.State, "failed") || n.State == "error" || time.Now().After(deadline) {
				return fmt.Errorf("node %s: %s (target %q, last_error %q), want %s", uuid, n.State, n.Target, n.LastError, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	one := func(i int) error {
		st, body, err := c.do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": fmt.Sprintf("%s-%d", tag, i), "driver": "fake-hardware"})
		if err != nil {
			return err
		}
		if st != http.StatusCreated {
			return fmt.Errorf("create node: HTTP %d: %s", st, errorMessage(body))
		}
		var n node
		if err := json.Unmarshal(body, &n); err != nil {
			return err
		}
		for _, s := range []struct{ verb, want string }{{"manage", "manageable"}, {"provide", "available"}, {"active", "active"}} {
			if err := verb(n.UUID, s.verb); err != nil {
				return err
			}
			if err := stable(n.UUID, s.want); err != nil {
				return err
			}
		}
		return nil
	}

	start := time.Now()
	work := make(chan int)
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var errs []error
	for range cfg.c {
		wg.Go(func() {
			for i := range work {
				if err := one(i); err != nil {
					errMu.Lock()
					errs = append(errs, err)
					errMu.Unlock()
				}
			}
		})
	}
	for i := range cfg.n {
		work <- i
	}
	close(work)
	wg.Wait()
	took := time.Since(start)

	fmt.Printf("%s: %d nodes enroll -> active from %d clients in %.1fs (%.1f deploys/min); %d provision calls, %d refused 409, %d refused 503, %d nodes failed\n",
		cfg.label, cfg.n, cfg.c, took.Seconds(), float64(cfg.n-len(errs))/took.Minutes(), k.calls.Load(), k.locked.Load(), k.busy.Load(), len(errs))
	verbs := make([]string, 0, len(k.lockedBy))
	for v := range k.lockedBy {
		verbs = append(verbs, v)
	}
	sort.Strings(verbs)
	for _, v := range verbs {
		fmt.Printf("  409 on %-8s %d\n", v, k.lockedBy[v])
	}
	for m, n := range k.messages {
		fmt.Printf("  %dx %q\n", n, m)
	}
	for i, err := range errs {
		if i == 5 {
			fmt.Printf("  ... %d more failures\n", len(errs)-5)
			break
		}
		fmt.Println("  failed:", err)
	}
	fmt.Printf("RESULT label=%s n=%d c=%d seconds=%.2f deploys_per_min=%.1f calls=%d locked=%d busy=%d failed=%d\n",
		cfg.label, cfg.n, cfg.c, took.Seconds(), float64(cfg.n-len(errs))/took.Minutes(), k.calls.Load(), k.locked.Load(), k.busy.Load(), len(errs))
	if len(errs) > 0 {
		return errors.Join(errs[0], fmt.Errorf("%d nodes failed", len(errs)))
	}
	return nil
}
