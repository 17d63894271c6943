package server_test

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/crypto/bcrypt"

	"github.com/ironwork/ironwork/internal/bmctest"
	"github.com/ironwork/ironwork/internal/lockedbuf"
	"github.com/ironwork/ironwork/internal/server"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

// jsonLines decodes the JSON log lines a server wrote.
func jsonLines(b *lockedbuf.Buffer) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// apiClient sends API requests with basic credentials (none when user is "").
type apiClient struct {
	t          *testing.T
	base       string
	user, pass string
	version    string // the microversion sent; empty means 1.87
}

// do sends a request and returns the status, the request id header and the decoded body.
func (c apiClient) do(method, path string, body any) (int, string, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("X-OpenStack-Ironic-API-Version", cmp.Or(c.version, "1.87"))
	req.Header.Set("Content-Type", "application/json")
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, resp.Header.Get("X-Openstack-Request-Id"), out
}

// provision sends a provision verb, retrying while the node is locked; it returns the request
// id of the accepted request.
func (c apiClient) provision(node, target string) string {
	c.t.Helper()
	for range 100 {
		code, id, body := c.do("PUT", "/v1/nodes/"+node+"/states/provision", map[string]any{"target": target})
		switch code {
		case http.StatusAccepted:
			return id
		case http.StatusConflict:
			time.Sleep(20 * time.Millisecond)
			continue
		}
		c.t.Fatalf("provision %s %s: %d %v", node, target, code, body)
	}
	c.t.Fatalf("provision %s %s: still locked", node, target)
	return ""
}

// waitState polls a node until it rests in state (no target, except for a failed state, which
// keeps the target it failed to reach, as in Ironic), for at most 10 s.
func (c apiClient) waitState(node, state string) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, n := c.do("GET", "/v1/nodes/"+node, nil)
		if n["provision_state"] == state && (n["target_provision_state"] == nil || strings.HasSuffix(state, " failed")) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("node %s not %q within 10 s: %v / %v, last_error %v", node, state, n["provision_state"], n["target_provision_state"], n["last_error"])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scrape reads metrics from url and parses them with Prometheus's own text parser.
func scrape(t *testing.T, url, user, pass string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	return fams
}

// sample finds the sample of a family whose labels include want; it fails when there is none.
func sample(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	t.Helper()
	m := findSample(fams, name, want)
	if m == nil {
		t.Fatalf("no sample %s%v in the scrape", name, want)
	}
	return m
}

func findSample(fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

// value is a counter's, gauge's or histogram's sample count.
func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return -1
}

// sumBy adds the values of a family's samples whose labels include want.
func sumBy(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	total := 0.0
	f := fams[name]
	if f == nil {
		return 0
	}
next:
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if v, ok := want[l.GetName()]; ok && v != l.GetValue() {
				continue next
			}
		}
		total += value(m)
	}
	return total
}

// TestMetricsAfterRealActions creates nodes, deploys fake-hardware nodes (one deploy fails)
// through the API with basic authentication, and checks /metrics as Prometheus parses it:
// transitions counted, nodes by state, API requests by route and status, deploy and clean
// durations, the conductor's share of the ring; and that the request id of each provision
// request is in its answer, its log lines (JSON) and the node history entries it caused, with
// the authenticated user.
func TestMetricsAfterRealActions(t *testing.T) {
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			t.Parallel()
			hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			htpasswd := filepath.Join(t.TempDir(), "htpasswd")
			if err := os.WriteFile(htpasswd, []byte("operator:"+string(hash)+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			logs := &lockedbuf.Buffer{}
			log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			srv := startServerLog(t, target.DSN(t), log, func(c *server.Config) {
				c.AuthStrategy, c.HTTPBasicAuthFile = "http_basic", htpasswd
				c.MetricsCountInterval = server.Duration{Duration: time.Hour} // the second scrape below
			})
			c := apiClient{t: t, base: srv.URL(), user: "operator", pass: "s3cret"}

			// A made-up method is counted as "other", not as a series of its own.
			if code, _, _ := c.do("BREW", "/v1/nodes", nil); code != http.StatusMethodNotAllowed {
				t.Fatalf("BREW /v1/nodes: %d, want 405", code)
			}
			// Without credentials the metrics are refused, as the API is.
			resp, err := http.Get(srv.URL() + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("GET /metrics without credentials: %d, want 401", resp.StatusCode)
			}

			create := func(name string, info map[string]any) string {
				code, _, n := c.do("POST", "/v1/nodes", map[string]any{"name": name, "driver": "fake-hardware", "driver_info": info})
				if code != http.StatusCreated {
					t.Fatalf("create %s: %d %v", name, code, n)
				}
				return n["uuid"].(string)
			}
			good := create("m-good", nil)
			bad := create("m-bad", map[string]any{"fake_deploy_fail": true})
			managed := create("m-managed", nil)
			create("m-enrolled", nil)

			provisions := 0
			for _, n := range []string{good, bad, managed} {
				c.provision(n, "manage")
				provisions++
				c.waitState(n, "manageable")
			}
			for _, n := range []string{good, bad} {
				c.provision(n, "provide")
				provisions++
				c.waitState(n, "available")
			}
			deployID := c.provision(good, "active")
			provisions++
			c.waitState(good, "active")
			c.provision(bad, "active")
			provisions++
			c.waitState(bad, "deploy failed")
			srv.Conductor().Wait()

			fams := scrape(t, srv.URL()+"/metrics", "operator", "s3cret")

			// Nodes by state, read from the store at scrape.
			for state, want := range map[string]float64{"active": 1, "deploy failed": 1, "manageable": 1, "enroll": 1} {
				if got := sumBy(fams, "ironwork_nodes", map[string]string{"provision_state": state}); got != want {
					t.Errorf("ironwork_nodes{provision_state=%q} = %v, want %v", state, got, want)
				}
			}
			if got := sumBy(fams, "ironwork_nodes", map[string]string{"maintenance": "false"}); got != 4 {
				t.Errorf("nodes out of maintenance = %v, want 4", got)
			}
			// The counts say when they were made, and a scrape within metrics_count_interval
			// (an hour here) shows the same count: a node made in between is not in it.
			counted := value(sample(t, fams, "ironwork_nodes_counted_timestamp_seconds", nil))
			if age := float64(time.Now().UnixMilli())/1000 - counted; age < 0 || age > 60 {
				t.Errorf("nodes counted %v s ago", age)
			}
			create("m-late", nil)
			again := scrape(t, srv.URL()+"/metrics", "operator", "s3cret")
			if at := value(sample(t, again, "ironwork_nodes_counted_timestamp_seconds", nil)); at != counted {
				t.Errorf("second scrape counted at %v, the first at %v", at, counted)
			}
			if got := sumBy(again, "ironwork_nodes", nil); got != 4 {
				t.Errorf("nodes in the second scrape = %v, want the first count's 4", got)
			}
			// Transitions, as the conductor made them.
			for _, tr := range []struct {
				from, to, event string
				want            float64
			}{
				{"enroll", "verifying", "manage", 3},
				{"verifying", "manageable", "done", 3},
				{"manageable", "cleaning", "provide", 2},
				{"cleaning", "available", "done", 2},
				{"available", "deploying", "deploy", 2},
				{"deploying", "active", "done", 1},
				{"deploying", "deploy failed", "fail", 1},
			} {
				m := sample(t, fams, "ironwork_provision_transitions_total", map[string]string{"from": tr.from, "to": tr.to, "event": tr.event})
				if value(m) != tr.want {
					t.Errorf("transitions %s -> %s (%s) = %v, want %v", tr.from, tr.to, tr.event, value(m), tr.want)
				}
			}
			// Whole operations and steps.
			for _, p := range []struct {
				op, result string
				want       float64
			}{{"deploy", "success", 1}, {"deploy", "failure", 1}, {"clean", "success", 2}} {
				m := sample(t, fams, "ironwork_provision_duration_seconds", map[string]string{"operation": p.op, "result": p.result})
				if value(m) != p.want {
					t.Errorf("provision_duration{%s,%s} count = %v, want %v", p.op, p.result, value(m), p.want)
				}
			}
			if got := value(sample(t, fams, "ironwork_step_duration_seconds", map[string]string{"kind": "deploy", "step": "deploy", "result": "success"})); got != 1 {
				t.Errorf("deploy step successes = %v, want 1", got)
			}
			if got := value(sample(t, fams, "ironwork_step_duration_seconds", map[string]string{"kind": "deploy", "step": "deploy", "result": "failure"})); got != 1 {
				t.Errorf("deploy step failures = %v, want 1", got)
			}
			// API requests by route template and status.
			for _, r := range []struct {
				method, route, code string
				want                float64
			}{
				{"POST", "/v1/nodes", "201", 4}, // of the first scrape, before m-late
				{"PUT", "/v1/nodes/{ident}/states/provision", "202", float64(provisions)},
				{"GET", "/metrics", "401", 1},
				{"other", "unmatched", "405", 1},
			} {
				m := sample(t, fams, "ironwork_api_requests_total", map[string]string{"method": r.method, "route": r.route, "code": r.code})
				if value(m) != r.want {
					t.Errorf("api_requests{%s %s %s} = %v, want %v", r.method, r.route, r.code, value(m), r.want)
				}
			}
			if got := value(sample(t, fams, "ironwork_api_request_duration_seconds", map[string]string{"method": "POST", "route": "/v1/nodes"})); got != 4 {
				t.Errorf("api_request_duration{POST /v1/nodes} count = %v, want 4", got)
			}
			// The conductor alone in its group owns the whole ring.
			if got := value(sample(t, fams, "ironwork_conductors_alive", map[string]string{"conductor_group": ""})); got != 1 {
				t.Errorf("conductors_alive = %v, want 1", got)
			}
			if got := value(sample(t, fams, "ironwork_hash_ring_share", map[string]string{"conductor": "test-conductor"})); got != 1 {
				t.Errorf("hash_ring_share = %v, want 1", got)
			}
			sample(t, fams, "ironwork_power_sync_lag_seconds", map[string]string{"conductor": "test-conductor"})
			t.Logf("scrape: %d families; power sync lag %.3f s", len(fams),
				value(sample(t, fams, "ironwork_power_sync_lag_seconds", nil)))

			// The request id: in the history entries the deploy caused, with the user...
			code, _, hist := c.do("GET", "/v1/nodes/"+good+"/history?detail=true", nil)
			if code != http.StatusOK {
				t.Fatalf("history: %d %v", code, hist)
			}
			var caused []string
			for _, e := range hist["history"].([]any) {
				ev := e.(map[string]any)
				if ev["user"] != "operator" {
					t.Errorf("history entry %q: user %v, want operator", ev["event"], ev["user"])
				}
				if strings.Contains(ev["event"].(string), deployID) {
					caused = append(caused, ev["event"].(string))
				}
			}
			want := []string{
				fmt.Sprintf("available -> deploying (deploy) (request %s)", deployID),
				fmt.Sprintf("deploying -> active (done) (request %s)", deployID),
			}
			if strings.Join(caused, "\n") != strings.Join(want, "\n") {
				t.Errorf("history entries of request %s:\n%s\nwant:\n%s", deployID, strings.Join(caused, "\n"), strings.Join(want, "\n"))
			}
			// ...and on its log lines, the API's and the conductor's.
			var states []string
			apiLine := false
			for _, l := range jsonLines(logs) {
				if l["request_id"] != deployID {
					continue
				}
				if l["msg"] == "provision state changed" {
					states = append(states, fmt.Sprint(l["to"]))
				}
				if l["msg"] == "request" && l["path"] == "/v1/nodes/"+good+"/states/provision" {
					apiLine = true
				}
			}
			if strings.Join(states, ",") != "deploying,active" || !apiLine {
				t.Errorf("log lines of request %s: states %v, API line %v", deployID, states, apiLine)
			}
		})
	}
}

// TestMetricsListen serves the metrics on an address of their own: the API no longer has them.
func TestMetricsListen(t *testing.T) {
	srv := startServer(t, "sqlite://"+filepath.Join(t.TempDir(), "ironwork.db"), func(c *server.Config) { c.MetricsListen = "127.0.0.1:0" })
	if srv.MetricsAddr() == "" {
		t.Fatal("no metrics listener")
	}
	fams := scrape(t, "http://"+srv.MetricsAddr()+"/metrics", "", "")
	sample(t, fams, "ironwork_conductors_alive", nil)
	resp, err := http.Get(srv.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics on the API with metrics_listen: %d, want 404", resp.StatusCode)
	}
}

// TestSensorMetricsFromOpenIPMI turns send_sensor_data on and reads the sensors of ipmi_sim
// (with sensors in its SDR repository) through the conductor's periodic task into /metrics; a
// node whose BMC refuses its password is counted as a BMC error.
func TestSensorMetricsFromOpenIPMI(t *testing.T) {
	sim := bmctest.NewIPMISimWithSensors(t)
	srv := startServer(t, "sqlite://"+filepath.Join(t.TempDir(), "ironwork.db"), func(c *server.Config) {
		c.SendSensorData, c.SendSensorDataInterval = true, server.Duration{Duration: 100 * time.Millisecond}
	})
	c := apiClient{t: t, base: srv.URL()}
	create := func(name, password string) string {
		code, _, n := c.do("POST", "/v1/nodes", map[string]any{"name": name, "driver": "ipmi", "driver_info": map[string]any{
			"ipmi_address": "127.0.0.1", "ipmi_port": sim.Port, "ipmi_username": sim.User,
			"ipmi_password": password, "ipmi_cipher_suite": "3"}})
		if code != http.StatusCreated {
			t.Fatalf("create %s: %d %v", name, code, n)
		}
		return n["uuid"].(string)
	}
	good := create("sensors-1", sim.Password)
	create("sensors-bad-password", "wrong")

	// The task runs every 100 ms; wait (bounded) for a scrape that has the readings.
	var fams map[string]*dto.MetricFamily
	deadline := time.Now().Add(20 * time.Second)
	for {
		fams = scrape(t, srv.URL()+"/metrics", "", "")
		if findSample(fams, "ironwork_sensor_reading", map[string]string{"node": good}) != nil &&
			findSample(fams, "ironwork_bmc_errors_total", map[string]string{"driver": "ipmi", "call": "sensors"}) != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no sensor readings and BMC error in /metrics within 20 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, s := range bmctest.SimSensors {
		m := findSample(fams, "ironwork_sensor_reading", map[string]string{"node": good, "sensor": s.Name})
		if s.Disabled {
			if m != nil {
				t.Errorf("disabled sensor %s exported", s.Name)
			}
			continue
		}
		if m == nil {
			t.Errorf("sensor %s not exported", s.Name)
			continue
		}
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["type"] != s.TypeName || labels["unit"] != s.UnitName || math.Abs(value(m)-s.Value) > 1e-6 {
			t.Errorf("sensor %s: %v = %v, want type %s unit %s value %v", s.Name, labels, value(m), s.TypeName, s.UnitName, s.Value)
		}
	}
	if n := sumBy(fams, "ironwork_sensor_reading", nil); len(fams["ironwork_sensor_reading"].GetMetric()) != 4 {
		t.Errorf("%d sensor series (sum %v), want 4: only the good node's", len(fams["ironwork_sensor_reading"].GetMetric()), n)
	}
}
