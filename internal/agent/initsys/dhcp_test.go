package initsys

import (
	"net"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

func TestXIDSource(t *testing.T) {
	mac1, _ := net.ParseMAC("52:54:00:00:00:01")
	mac2, _ := net.ParseMAC("52:54:00:00:00:02")
	now := time.Unix(1_700_000_000, 0)
	a, b, again := newXIDSource(mac1, now), newXIDSource(mac2, now), newXIDSource(mac1, now)
	seen := map[dhcpv4.TransactionID]bool{}
	for i := 0; i < 1000; i++ {
		x, y, z := a.next(), b.next(), again.next()
		if x == y {
			t.Fatalf("two MACs booted at the same instant drew the same id %v at %d", x, i)
		}
		if x != z {
			t.Fatalf("the source is not a function of its seed: %v != %v", x, z)
		}
		if seen[x] {
			t.Fatalf("id %v repeated within 1000", x)
		}
		seen[x] = true
	}
	// The messages carry the source's ids, not ones the library drew from the kernel.
	want := newXIDSource(mac1, now).next()
	if got := discoverMessage(newXIDSource(mac1, now).next(), mac1); got.TransactionID != want ||
		got.MessageType() != dhcpv4.MessageTypeDiscover || got.ClientHWAddr.String() != mac1.String() {
		t.Fatalf("discover: %s", got.Summary())
	}
}

func TestExtendMessage(t *testing.T) {
	mac, _ := net.ParseMAC("52:54:00:00:00:01")
	ack := newMessage(dhcpv4.TransactionID{1, 2, 3, 4}, mac, dhcpv4.WithMessageType(dhcpv4.MessageTypeAck),
		dhcpv4.WithYourIP(net.IPv4(10, 0, 0, 5)), dhcpv4.WithServerIP(net.IPv4(10, 0, 0, 1)),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 0, 0, 1))))
	m := extendMessage(dhcpv4.TransactionID{9, 9, 9, 9}, ack)
	if m.TransactionID != (dhcpv4.TransactionID{9, 9, 9, 9}) || !m.ClientIPAddr.Equal(net.IPv4(10, 0, 0, 5)) ||
		m.MessageType() != dhcpv4.MessageTypeRequest || m.Options.Has(dhcpv4.OptionServerIdentifier) ||
		m.Options.Has(dhcpv4.OptionRequestedIPAddress) {
		t.Fatalf("renew/rebind request must carry ciaddr and neither server id nor requested address: %s", m.Summary())
	}
}

func TestTimesOf(t *testing.T) {
	opt := func(code dhcpv4.OptionCode, s uint32) dhcpv4.Modifier {
		return dhcpv4.WithOption(dhcpv4.OptGeneric(code, []byte{byte(s >> 24), byte(s >> 16), byte(s >> 8), byte(s)}))
	}
	for _, tc := range []struct {
		name string
		mods []dhcpv4.Modifier
		want leaseTimes
	}{
		{"lease only", []dhcpv4.Modifier{opt(dhcpv4.OptionIPAddressLeaseTime, 3600)},
			leaseTimes{T1: 1800 * time.Second, T2: 3150 * time.Second, Expiry: 3600 * time.Second}},
		{"T1 and T2 given", []dhcpv4.Modifier{opt(dhcpv4.OptionIPAddressLeaseTime, 120), opt(dhcpv4.OptionRenewTimeValue, 10), opt(dhcpv4.OptionRebindingTimeValue, 20)},
			leaseTimes{T1: 10 * time.Second, T2: 20 * time.Second, Expiry: 120 * time.Second}},
		{"T1 past T2 ignored", []dhcpv4.Modifier{opt(dhcpv4.OptionIPAddressLeaseTime, 100), opt(dhcpv4.OptionRenewTimeValue, 99)},
			leaseTimes{T1: 50 * time.Second, T2: 87500 * time.Millisecond, Expiry: 100 * time.Second}},
		{"T2 past expiry ignored", []dhcpv4.Modifier{opt(dhcpv4.OptionIPAddressLeaseTime, 100), opt(dhcpv4.OptionRebindingTimeValue, 200)},
			leaseTimes{T1: 50 * time.Second, T2: 87500 * time.Millisecond, Expiry: 100 * time.Second}},
		{"infinite", []dhcpv4.Modifier{opt(dhcpv4.OptionIPAddressLeaseTime, 0xffffffff)}, leaseTimes{Forever: true}},
		{"none", nil, leaseTimes{T1: 1800 * time.Second, T2: 3150 * time.Second, Expiry: 3600 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := timesOf(newMessage(dhcpv4.TransactionID{}, nil, tc.mods...)); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestSchedule walks a lease of 1000 s (T1 500 s, T2 875 s) through RFC 2131's phases.
func TestSchedule(t *testing.T) {
	got := time.Unix(1_000_000, 0)
	lt := leaseTimes{T1: 500 * time.Second, T2: 875 * time.Second, Expiry: 1000 * time.Second}
	at := func(s float64) time.Time { return got.Add(time.Duration(s * float64(time.Second))) }
	for _, tc := range []struct {
		now       float64
		wantPhase leasePhase
		wantNext  float64
	}{
		{0, phaseBound, 500},
		{499, phaseBound, 500},
		{500, phaseRenewing, 687.5},  // half the 375 s left to T2
		{800, phaseRenewing, 860},    // half of 75 s is less than the 60 s minimum
		{850, phaseRenewing, 875},    // the minimum would pass T2
		{875, phaseRebinding, 937.5}, // half of 125 s is 62.5 s
		{960, phaseRebinding, 1000},  // never past expiry
		{1000, phaseExpired, 1000},
	} {
		phase, next := schedule(at(tc.now), got, lt, 60*time.Second)
		if phase != tc.wantPhase || !next.Equal(at(tc.wantNext)) {
			t.Errorf("at %v s: %s until %v s, want %s until %v s", tc.now, phase, next.Sub(got).Seconds(), tc.wantPhase, tc.wantNext)
		}
	}
	if phase, next := schedule(at(1e6), got, leaseTimes{Forever: true}, time.Minute); phase != phaseBound || !next.IsZero() {
		t.Errorf("infinite lease: %s until %v", phase, next)
	}
}
