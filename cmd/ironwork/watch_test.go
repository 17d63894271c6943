package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/lockedbuf"
)

// waitFor waits, at most 30 s, until the buffer holds every text.
func waitFor(t *testing.T, b *lockedbuf.Buffer, texts ...string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		out := b.String()
		missing := ""
		for _, s := range texts {
			if !strings.Contains(out, s) {
				missing = s
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the output:\n%s", missing, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// noEvents serves the API at target without its events stream, as an older server.
func noEvents(t *testing.T, target string) string {
	u, _ := url.Parse(target)
	proxy := httputil.NewSingleHostReverseProxy(u)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == api.EventsPath {
			http.NotFound(w, r)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

func TestNodeProvisionWait(t *testing.T) {
	base := startServer(t)
	for _, tc := range []struct{ name, url string }{{"stream", base}, {"polling", noEvents(t, base)}} {
		t.Run(tc.name, func(t *testing.T) {
			node := "wait-" + tc.name
			if code, _, errs := cli(t, tc.url, "node", "create", "--driver", "fake-hardware", "--name", node,
				"--driver-info", "fake_deploy_delay=1"); code != 0 {
				t.Fatalf("create: %s", errs)
			}
			for _, step := range []struct {
				args []string
				want string
			}{
				{[]string{"manage"}, "is manageable"},
				{[]string{"provide"}, "is available"},
				{[]string{"deploy", "--image", "http://127.0.0.1:9/img.raw", "--checksum", "sha256:" + strings.Repeat("0", 64)}, "is active"},
			} {
				args := append([]string{"node", step.args[0], node, "--wait", "--timeout", "1m"}, step.args[1:]...)
				code, out, errs := cli(t, tc.url, args...)
				if code != 0 || !strings.Contains(out, "node "+node+" "+step.want) {
					t.Fatalf("%v: %d\n%s\n%s", step.args, code, out, errs)
				}
				t.Logf("%s:\n%s", step.args[0], errs)
				if step.args[0] == "deploy" && !strings.Contains(errs, "deploying → active") {
					t.Errorf("deploy --wait did not show deploying:\n%s", errs)
				}
			}
		})
	}
	if code, _, errs := cli(t, base, "node", "create", "--driver", "fake-hardware", "--name", "bad-deploy"); code != 0 {
		t.Fatal(errs)
	}
	ops := []api.PatchOp{{Op: "add", Path: "/driver_info/fake_deploy_fail", Value: true}}
	if err := (&api.Client{BaseURL: base}).Do(context.Background(), http.MethodPatch, "/v1/nodes/bad-deploy", ops, nil); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"manage", "provide"} {
		if code, _, errs := cli(t, base, "node", v, "bad-deploy", "--wait"); code != 0 {
			t.Fatal(errs)
		}
	}
	code, _, errs := cli(t, base, "node", "deploy", "bad-deploy", "--wait", "--image", "http://127.0.0.1:9/x.raw")
	if code != 1 || !strings.Contains(errs, "is deploy failed") {
		t.Errorf("a failing deploy: %d\n%s", code, errs)
	}
	if code, _, errs := cli(t, base, "node", "manage", "bad-deploy", "--image", "x"); code != 1 || !strings.Contains(errs, "--image is only for deploy") {
		t.Errorf("manage --image: %d %s", code, errs)
	}
}

func TestNodeListWatch(t *testing.T) {
	base := startServer(t)
	for _, tc := range []struct{ name, url string }{{"stream", base}, {"polling", noEvents(t, base)}} {
		t.Run(tc.name, func(t *testing.T) {
			node := "watched-" + tc.name
			if code, _, errs := cli(t, base, "node", "create", "--driver", "fake-hardware", "--name", node); code != 0 {
				t.Fatal(errs)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var out, errs lockedbuf.Buffer
			done := make(chan int, 1)
			go func() { done <- run(ctx, []string{"node", "list", "--watch", "--url", tc.url}, &out, &errs) }()
			waitFor(t, &out, "PROVISION_STATE", node)
			if code, _, e := cli(t, base, "node", "manage", node); code != 0 {
				t.Fatal(e)
			}
			waitFor(t, &out, "--- ", node+" manageable")
			cancel()
			select {
			case code := <-done:
				if code != 0 {
					t.Errorf("--watch ended with %d: %s", code, errs.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatal("--watch did not end with its context")
			}
			tables := strings.Count(out.String(), "PROVISION_STATE")
			t.Logf("%d tables drawn; stderr: %s", tables, errs.String())
			if tables < 2 {
				t.Errorf("the list was not drawn again:\n%s", out.String())
			}
		})
	}
}
