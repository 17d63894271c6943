package pace

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestScheduleSpreadsClients: four clients at 400 requests/s send every 10 ms, 2.5 ms apart,
// and a request's latency counts from when it was due even when its client is late.
func TestScheduleSpreadsClients(t *testing.T) {
	start := time.Now().Add(-time.Second) // every first request is already late
	for i := range 4 {
		s := New(start, 400, i, 4)
		for k := range 3 {
			from, ok := s.Next(context.Background(), time.Time{})
			want := start.Add(time.Duration(i)*2500*time.Microsecond + time.Duration(k)*10*time.Millisecond)
			if !ok || !from.Equal(want) {
				t.Fatalf("client %d request %d: due %v (ok %v), want %v", i, k, from.Sub(start), ok, want.Sub(start))
			}
		}
	}
}

// TestScheduleWaitsAndStops: a request due in the future is waited for; none is due past the
// deadline or after the context ends; the closed loop (nil) never waits.
func TestScheduleWaitsAndStops(t *testing.T) {
	start := time.Now()
	s := New(start, 20, 0, 1) // every 50 ms
	s.Next(context.Background(), time.Time{})
	if from, ok := s.Next(context.Background(), time.Time{}); !ok || time.Now().Before(from) {
		t.Fatalf("second request: due %v, ok %v, returned before it was due", from.Sub(start), ok)
	}
	if _, ok := s.Next(context.Background(), start.Add(100*time.Millisecond)); ok {
		t.Fatal("a request due at the deadline was let out")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok := New(time.Now().Add(time.Hour), 1, 0, 1).Next(ctx, time.Time{}); ok {
		t.Fatal("a request was let out after its context ended")
	}
	var closed *Schedule
	if New(start, 0, 0, 1) != nil {
		t.Fatal("rate 0 is not the closed loop")
	}
	before := time.Now()
	if from, ok := closed.Next(context.Background(), time.Time{}); !ok || from.Before(before) {
		t.Fatalf("closed loop: from %v before now, ok %v", before.Sub(from), ok)
	}
}

// TestTimelineSplitsBySecond: latencies land in the second their request was due in; each
// second's percentiles are its own, an empty second reads zero, and the lines say so.
func TestTimelineSplitsBySecond(t *testing.T) {
	var tl Timeline
	for i := range 100 { // second 0: 1 to 100 ms
		tl.Add(time.Duration(i)*10*time.Millisecond, time.Duration(i+1)*time.Millisecond)
	}
	tl.Add(2500*time.Millisecond, 3*time.Second) // second 2: one stall; second 1 empty
	got := tl.Seconds()
	want := []Second{
		{Requests: 100, P50: 51 * time.Millisecond, P99: 100 * time.Millisecond, Slowest: 100 * time.Millisecond},
		{},
		{Requests: 1, P50: 3 * time.Second, P99: 3 * time.Second, Slowest: 3 * time.Second},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("seconds %+v, want %+v", got, want)
	}
	var b strings.Builder
	tl.Write(&b, "x: ")
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[2], "x: second   2:     1 requests, p50  3000.0ms") {
		t.Fatalf("lines:\n%s", b.String())
	}
}
