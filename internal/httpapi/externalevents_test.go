package httpapi_test

import (
	"context"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/httpapi"
	"github.com/ironwork/ironwork/internal/sqlstore"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

// eventMetrics records the external events the API counts.
type eventMetrics struct {
	mu     sync.Mutex
	events []string
}

func (m *eventMetrics) APIRequest(string, string, int, time.Duration) {}
func (m *eventMetrics) ExternalEvent(event, status string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, event+"/"+status)
}

// TestExternalEvents posts Neutron's port events (1.54) as Ironic's API reference shows them,
// and the bodies Ironic's schema refuses.
func TestExternalEvents(t *testing.T) {
	store, err := sqlstore.Open(context.Background(), sqlstoretest.Targets()[0].DSN(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	m := &eventMetrics{}
	ts := httptest.NewServer(httpapi.New(httpapi.Options{Store: store, Drivers: ironwork.DefaultDriverConfig(), Metrics: m}))
	t.Cleanup(ts.Close)

	good := map[string]any{"events": []any{
		map[string]any{"event": "network.bind_port", "port_id": "11111111-aaaa-bbbb-cccc-555555555555", "mac_address": "de:ad:be:ef:00:01",
			"status": "ACTIVE", "device_id": "22222222-aaaa-bbbb-cccc-555555555555", "binding:host_id": "22222222-aaaa-bbbb-cccc-555555555555",
			"binding:vnic_type": "baremetal"},
		map[string]any{"event": "network.unbind_port", "port_id": "11111111-aaaa-bbbb-cccc-555555555555", "mac_address": "de:ad:be:ef:00:01",
			"status": "whatever", "device_id": nil},
	}}
	mustStatus(t, call(t, ts, "POST", "/v1/events", "1.53", good), 404)
	mustStatus(t, call(t, ts, "POST", "/v1/events", "1.54", good), 204)
	if want := []string{"network.bind_port/ACTIVE", "network.unbind_port/other"}; !slices.Equal(m.events, want) {
		t.Fatalf("counted %v, want %v", m.events, want)
	}
	one := func(e map[string]any) map[string]any { return map[string]any{"events": []any{e}} }
	base := func() map[string]any {
		return map[string]any{"event": "network.delete_port", "port_id": "11111111-aaaa-bbbb-cccc-555555555555", "mac_address": "de:ad:be:ef:00:01", "status": "DOWN"}
	}
	for name, c := range map[string]struct {
		body any
		msg  string
	}{
		"no events":     {map[string]any{}, "'events' is a required property"},
		"empty":         {map[string]any{"events": []any{}}, "should be non-empty"},
		"extra member":  {map[string]any{"events": []any{base()}, "x": 1}, "'x' was unexpected"},
		"unknown event": {one(func() map[string]any { e := base(); e["event"] = "network.other"; return e }()), "is not one of"},
		"bad port_id":   {one(func() map[string]any { e := base(); e["port_id"] = "nope"; return e }()), "is not a 'uuid'"},
		"bad mac":       {one(func() map[string]any { e := base(); e["mac_address"] = "zz"; return e }()), "is not a 'mac-address'"},
		"no status":     {one(func() map[string]any { e := base(); delete(e, "status"); return e }()), "'status' is a required property"},
		"status number": {one(func() map[string]any { e := base(); e["status"] = 1; return e }()), "is not of type 'string'"},
		"unknown key":   {one(func() map[string]any { e := base(); e["node"] = "x"; return e }()), "'node' was unexpected"},
	} {
		t.Run(name, func(t *testing.T) {
			wantFault(t, call(t, ts, "POST", "/v1/events", "1.54", c.body), 400, c.msg)
		})
	}
	if len(m.events) != 2 {
		t.Fatalf("refused events were counted: %v", m.events)
	}
}
