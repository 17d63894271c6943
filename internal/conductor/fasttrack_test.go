package conductor_test

import (
	"context"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

func fastTrack(cfg *conductor.Config) { cfg.FastTrack, cfg.FastTrackTimeout = true, time.Minute }

// TestFastTrackAgentInStableStates: with fast track on, an agent left running in available
// or manageable may look itself up (its token stays masked) and heartbeat, and its heartbeat
// is recorded; with fast track off (Ironic's default) both are refused as before.
func TestFastTrackAgentInStableStates(t *testing.T) {
	for _, on := range []bool{true, false} {
		var opts []envOption
		if on {
			opts = append(opts, fastTrack)
		}
		e := newEnv(t, opts...)
		for _, st := range []ironwork.ProvisionState{ironwork.Available, ironwork.Manageable} {
			n := e.node(t, func(n *ironwork.Node) {
				n.ProvisionState = st
				n.DriverInternalInfo = ironwork.JSONObject{"agent_secret_token": "tok"}
			})
			_, lookupErr := e.c.LookupAgent(context.Background(), ref(n.UUID))
			hbErr := heartbeat(t, e.c, n.UUID, conductor.Heartbeat{AgentToken: "tok", CallbackURL: "http://192.0.2.7:9999", AgentVersion: "1"})
			got := e.get(t, n.UUID)
			if on {
				ok(t, lookupErr)
				ok(t, hbErr)
				if a := conductor.LoadAgent(got); a.URL != "http://192.0.2.7:9999" || a.LastHeartbeat.IsZero() || a.Token != "tok" {
					t.Errorf("fast track on, %s: agent after heartbeat %+v", st, a)
				}
				// A wrong token is still refused.
				wantCode(t, heartbeat(t, e.c, n.UUID, conductor.Heartbeat{AgentToken: "nope", CallbackURL: "http://x"}), ironwork.EFORBIDDEN)
			} else {
				wantCode(t, lookupErr, ironwork.ENOTFOUND)
				wantCode(t, hbErr, ironwork.ECONFLICT)
				if a := conductor.LoadAgent(got); a.URL != "" {
					t.Errorf("fast track off, %s: heartbeat recorded %+v", st, a)
				}
			}
		}
	}
}

// TestFastTrackLiveAgent: Task.FastTrack is true only with fast track on, a token, a
// heartbeat within fast_track_timeout and the BMC saying the node is on.
func TestFastTrackLiveAgent(t *testing.T) {
	now := time.Now().UTC()
	for _, tc := range []struct {
		name  string
		on    bool
		token string
		beat  time.Time
		power ironwork.PowerState
		want  bool
	}{
		{"live agent", true, "tok", now, ironwork.PowerOn, true},
		{"fast track off", false, "tok", now, ironwork.PowerOn, false},
		{"no token", true, "", now, ironwork.PowerOn, false},
		{"no heartbeat", true, "tok", time.Time{}, ironwork.PowerOn, false},
		{"heartbeat too old", true, "tok", now.Add(-2 * time.Minute), ironwork.PowerOn, false},
		{"powered off", true, "tok", now, ironwork.PowerOff, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []envOption
			if tc.on {
				opts = append(opts, fastTrack)
			}
			e := newEnv(t, opts...)
			n := e.node(t, func(n *ironwork.Node) {
				n.DriverInternalInfo = ironwork.JSONObject{"agent_url": "http://192.0.2.7:9999"}
				if tc.token != "" {
					n.DriverInternalInfo["agent_secret_token"] = tc.token
				}
				if !tc.beat.IsZero() {
					n.DriverInternalInfo["agent_last_heartbeat"] = tc.beat.Format(time.RFC3339)
				}
			})
			ok(t, setPower(t, e.c, n.UUID, tc.power))
			e.c.Wait()
			var got bool
			ok(t, withNode(t, e.c, n.UUID, func(task *conductor.Task) error {
				got = task.FastTrack(context.Background())
				return nil
			}))
			if got != tc.want {
				t.Errorf("FastTrack = %v, want %v", got, tc.want)
			}
		})
	}
}
