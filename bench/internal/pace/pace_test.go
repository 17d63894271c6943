package pace

import (
	"context"
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
