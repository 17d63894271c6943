package metrics

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// brokenStore fails every query, as a store whose database went away.
type brokenStore struct{}

var errDown = errors.New("database is down")

func (brokenStore) NodeCounts(context.Context, time.Duration) ([]sqlstore.NodeCount, time.Time, error) {
	return nil, time.Time{}, errDown
}
func (brokenStore) ListConductors(context.Context, string, int) ([]*ironwork.Conductor, error) {
	return nil, errDown
}

// TestScrapeSurvivesAFailingStore: the fleet numbers are left out and logged, and the rest is
// served and parses.
func TestScrapeSurvivesAFailingStore(t *testing.T) {
	m := New(prometheus.NewRegistry())
	m.WatchFleet(FleetOptions{Store: brokenStore{}, HeartbeatTimeout: time.Minute})
	m.Transition(ironwork.Available, ironwork.Deploying, ironwork.EventDeploy)
	m.SensorsRead(map[string][]conductor.Sensor{"n1": {{Name: "CPU Temp", Type: "Temperature", Unit: "celsius", Value: 40}}})
	m.SensorsRead(map[string][]conductor.Sensor{"n2": {{Name: "Fan", Type: "Fan", Unit: "rpm", Value: 900}}})
	var logs bytes.Buffer
	rec := httptest.NewRecorder()
	m.Handler(slog.New(slog.NewTextHandler(&logs, nil))).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	if fams["ironwork_provision_transitions_total"] == nil || fams["ironwork_nodes"] != nil || fams["ironwork_nodes_counted_timestamp_seconds"] != nil {
		t.Errorf("families: transitions %v, nodes %v, counted at %v", fams["ironwork_provision_transitions_total"] != nil,
			fams["ironwork_nodes"] != nil, fams["ironwork_nodes_counted_timestamp_seconds"] != nil)
	}
	// A new collection replaces the last: n1's reading is gone.
	if s := fams["ironwork_sensor_reading"].GetMetric(); len(s) != 1 || s[0].GetGauge().GetValue() != 900 {
		t.Errorf("sensor series after two collections: %v", s)
	}
	if !strings.Contains(logs.String(), "database is down") {
		t.Errorf("the failure was not logged: %q", logs.String())
	}
}
