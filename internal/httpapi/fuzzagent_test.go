package httpapi_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/driver/fake"
	"github.com/ironwork/ironwork/internal/driver/network"
	"github.com/ironwork/ironwork/internal/httpapi"
)

// FuzzAgentEndpoints sends arbitrary lookups and heartbeats, the API's public endpoints that
// anyone on the provisioning network reaches, to a real API and conductor with one node waiting
// for its agent: no request may give a 5xx, a heartbeat without the node's token is never
// accepted, and the node stays readable and waiting.
func FuzzAgentEndpoints(f *testing.F) {
	const mac = "52:54:00:aa:bb:cc"
	f.Add("addresses="+mac, "n", []byte(`{"callback_url":"http://10.0.0.5:9999","agent_token":"x","agent_version":"1"}`))
	f.Add("node_uuid=n&addresses=zz", "n", []byte(`{"callback_url":"https://a","agent_token":null,"ironwork_progress":{"bytes":1e400}}`))
	f.Add("addresses=,,,"+mac+",", "00000000-0000-0000-0000-000000000000", []byte(`{"callback_url":5}`))
	f.Add("node_uuid=%00", "n%00", []byte("\xff\xfe"))
	f.Add("", "n", []byte(`{"callback_url":"http://x","agent_token":"x","agent_status":"end","agent_verify_ca":true}`))

	var store interface {
		GetNode(context.Context, string) (*ironwork.Node, error)
	}
	ts, st := newAPI(f, func(o *httpapi.Options) {
		reg := conductor.Registry{}
		fake.Register(reg)
		network.Register(reg)
		cfg := conductor.Defaults()
		cfg.Hostname = "c1"
		c := conductor.New(cfg, o.Store, ironwork.DefaultDriverConfig(), reg, nil)
		o.Conductor = localConductor{c}
	})
	store = st
	ctx := context.Background()
	n := &ironwork.Node{Name: "n", Driver: "fake-hardware", ProvisionState: ironwork.DeployWait, TargetProvisionState: ironwork.Active}
	if err := ironwork.DefaultDriverConfig().ResolveInterfaces(n); err != nil {
		f.Fatal(err)
	}
	if err := st.CreateNode(ctx, n); err != nil {
		f.Fatal(err)
	}
	if err := st.CreatePort(ctx, &ironwork.Port{NodeUUID: n.UUID, Address: mac}); err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, lookupQuery, ident string, heartbeat []byte) {
		fuzzSend(t, ts, "GET", ts.URL+"/v1/lookup?"+lookupQuery, nil)
		status, _ := fuzzSend(t, ts, "POST", ts.URL+"/v1/heartbeat/"+url.PathEscape(ident), heartbeat)
		got, err := store.GetNode(ctx, n.UUID)
		if err != nil {
			t.Fatalf("node unreadable after the requests: %v", err)
		}
		if status == http.StatusAccepted {
			token := conductor.LoadAgent(got).Token
			if token == "" || !bytes.Contains(heartbeat, []byte(token)) {
				t.Fatalf("heartbeat %q accepted without the node's token", heartbeat)
			}
		}
		if got.ProvisionState != ironwork.DeployWait || got.Reservation != "" {
			t.Fatalf("node now %s, reservation %q", got.ProvisionState, got.Reservation)
		}
	})
}
