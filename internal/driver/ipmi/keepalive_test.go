package ipmi

import (
	"testing"
	"time"
)

// TestCloseDelayAvoidsKeepalive checks that a session is never closed while go-ipmi's own
// keepalive request may be in flight: from its tick (every keepAlive after the connect, a
// second early at most) until busy plus a second later.
func TestCloseDelayAvoidsKeepalive(t *testing.T) {
	const busy = 9 * time.Second
	inFlight := func(at time.Duration) bool {
		if at < keepAlive-time.Second {
			return false
		}
		phase := at % keepAlive
		return phase < busy+time.Second || phase > keepAlive-time.Second
	}
	for since := time.Duration(0); since < 4*keepAlive; since += 250 * time.Millisecond {
		w := closeDelay(since, busy)
		if w < 0 || w > keepAlive {
			t.Fatalf("closeDelay(%v) = %v: out of range", since, w)
		}
		if at := since + w; inFlight(at) {
			t.Errorf("closeDelay(%v) = %v: closes at %v, while a keepalive may be in flight", since, w, at)
		}
		if !inFlight(since) && w != 0 {
			t.Errorf("closeDelay(%v) = %v: waits although no keepalive can be in flight", since, w)
		}
	}
	if w := closeDelay(3*keepAlive, keepAlive); w != 0 {
		t.Errorf("a request budget longer than the keepalive period leaves no safe moment: want 0, got %v", w)
	}
}
