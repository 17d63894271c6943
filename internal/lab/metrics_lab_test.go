package lab_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ironwork/ironwork/internal/lab"
)

// scrapeLab reads the lab server's /metrics (served by the API listener: the lab sets no
// metrics_listen) and parses it as Prometheus does.
func scrapeLab(ctx context.Context, t testing.TB, st *lab.State) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, st.APIURL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape the lab's metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/metrics: %s", st.APIURL, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse the lab's metrics: %v", err)
	}
	return fams
}

// metricSum adds the values (counters, gauges; a histogram's sample count) of a family's
// samples whose labels include want.
func metricSum(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	var sum float64
samples:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue samples
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

// metricWant is one expected sum of a family's samples.
type metricWant struct {
	name   string
	labels map[string]string
	want   float64
}

// String is the family and labels as PromQL writes them: name{k="v",...}.
func (w metricWant) String() string {
	var ls []string
	for _, k := range slices.Sorted(maps.Keys(w.labels)) {
		ls = append(ls, fmt.Sprintf("%s=%q", k, w.labels[k]))
	}
	return w.name + "{" + strings.Join(ls, ",") + "}"
}

// checkMetrics compares the sums; every one is logged, wrong ones fail the test.
func checkMetrics(t testing.TB, fams map[string]*dto.MetricFamily, wants []metricWant) {
	t.Helper()
	for _, w := range wants {
		got := metricSum(fams, w.name, w.labels)
		if got != w.want {
			t.Errorf("metrics: %v = %v, want %v", w, got, w.want)
		} else {
			t.Logf("metrics: %v = %v", w, got)
		}
	}
}

// waitMetrics scrapes the lab's metrics until every sum is as wanted or within has passed,
// then checks them (checkMetrics). The conductor counts a transition just after it has
// written the new state, so a client that has seen the state can scrape a moment before the
// count; a test that saw a node come to rest and scrapes at once could see the count before.
func waitMetrics(ctx context.Context, t testing.TB, st *lab.State, wants []metricWant, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		fams := scrapeLab(ctx, t, st)
		done := !slices.ContainsFunc(wants, func(w metricWant) bool { return metricSum(fams, w.name, w.labels) != w.want })
		if done || time.Now().After(deadline) {
			checkMetrics(t, fams, wants)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}
