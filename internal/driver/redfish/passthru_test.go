package redfish

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

func logTask(info ironwork.JSONObject) *conductor.Task {
	t := task(info)
	t.Log = slog.New(slog.DiscardHandler)
	return t
}

// TestSubscriptionsFromTheDMTFMockup reads the mockup's four event subscriptions as Ironic's
// get_all_subscriptions and get_subscription answer them, and checks create_subscription's
// arguments against the mockup's EventTypesForSubscription before anything is sent.
func TestSubscriptionsFromTheDMTFMockup(t *testing.T) {
	_, info := newBMC(t)
	v, ctx := Vendor{}, context.Background()
	call := func(method string, args map[string]any) (any, error) {
		c := conductor.PassthruCall{Method: method, HTTPMethod: v.VendorMethods()[method].HTTPMethods[0], Args: args}
		if err := v.ValidatePassthru(ctx, logTask(info), c); err != nil {
			return nil, err
		}
		return v.CallPassthru(ctx, logTask(info), c)
	}
	all, err := call("get_all_subscriptions", map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	if n := all.(map[string]any)["Members@odata.count"]; n != float64(4) {
		t.Errorf("get_all_subscriptions: %v members, want 4: %v", n, all)
	}
	one, err := call("get_subscription", map[string]any{"id": "1"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"Id": "1", "Destination": "http://www.dnsname.com/Destination1", "EventTypes": []any{"Alert"},
		"Context": "WebUser3", "Protocol": "Redfish"}
	if d := cmp.Diff(want, one); d != "" {
		t.Errorf("get_subscription (-want +got):\n%s", d)
	}
	for _, tc := range []struct {
		method string
		args   map[string]any
		want   string
	}{
		{"create_subscription", map[string]any{"Destination": "https://x/y", "EventTypes": []any{"MetricReport"}}, "EventTypes [MetricReport] is not a valid value"},
		{"create_subscription", map[string]any{"Destination": "https://x/y", "EventTypes": "Alert"}, "is not a valid value"},
		{"create_subscription", map[string]any{"Destination": "no-scheme"}, "Destination no-scheme is not a valid URI"},
		{"create_subscription", map[string]any{}, "is not a valid URI"},
		{"create_subscription", map[string]any{"Destination": "https://x/y", "Context": 3}, "Context 3 is not a valid string"},
		{"create_subscription", map[string]any{"Destination": "https://x/y", "HttpHeaders": map[string]any{"a": "b"}}, "is not a list of headers"},
		{"delete_subscription", map[string]any{}, "id can't be None"},
		{"get_subscription", map[string]any{"id": "../../Systems"}, "is not a subscription id"},
		{"eject_vmedia", map[string]any{"boot_device": "tape"}, "Boot device tape is not a valid value"},
	} {
		_, err := call(tc.method, tc.args)
		if err == nil || ironwork.ErrorCode(err) != ironwork.EINVALID || !strings.Contains(ironwork.ErrorMessage(err), tc.want) {
			t.Errorf("%s %v: %v, want a 400 with %q", tc.method, tc.args, err, tc.want)
		}
	}
	if _, err := call("get_subscription", map[string]any{"id": "99"}); err == nil {
		t.Error("an unknown subscription was read")
	}
}

// TestIndicatorsFromTheDMTFMockup lists the mockup's system LED (named by the system's UUID)
// and chassis LED (the chassis has no UUID: its Id) with their states.
func TestIndicatorsFromTheDMTFMockup(t *testing.T) {
	_, info := newBMC(t)
	d, ctx, tk := Interface{}, context.Background(), logTask(info)
	got, err := d.SupportedIndicators(ctx, tk)
	if err != nil {
		t.Fatal(err)
	}
	rw := conductor.IndicatorInfo{States: []string{"BLINKING", "OFF", "ON"}}
	want := map[string]map[string]conductor.IndicatorInfo{"system": {"38947555-7742-3448-3784-823347823834": rw}, "chassis": {"1U": rw}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("indicators (-want +got):\n%s", diff)
	}
	for _, tc := range []struct{ component, name, want string }{
		{"system", "38947555-7742-3448-3784-823347823834", "OFF"}, {"chassis", "1U", "ON"},
	} {
		if st, err := d.IndicatorState(ctx, tk, tc.component, tc.name); err != nil || st != tc.want {
			t.Errorf("%s@%s: %q %v, want %s", tc.name, tc.component, st, err, tc.want)
		}
	}
	if _, err := d.IndicatorState(ctx, tk, "chassis", "2U"); err == nil || !strings.Contains(ironwork.ErrorMessage(err), "Unknown indicator 2U for component chassis") {
		t.Errorf("unknown indicator: %v", err)
	}
}
