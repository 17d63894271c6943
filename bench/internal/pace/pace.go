// Package pace spreads the requests of a benchmark's clients on a fixed schedule, so that a
// crowd offers a given rate instead of sending as fast as it is answered.
//
// In a closed loop (each client sends when its last request is answered) the latency at
// saturation is set by Little's law, clients / throughput, whatever the server does; a fixed
// rate measures the latency of a given load. A request's latency is then counted from the
// moment it was due, not from when it went out: a client held up by a slow answer charges the
// wait to the requests it delayed, which a closed loop would leave unmeasured (coordinated
// omission).
package pace

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"
)

// Schedule is one client's timetable: a request due every interval (clients / rate), the
// first at an offset that spreads the clients evenly over one interval. A nil *Schedule is the closed loop: no waiting,
// latency from the moment of sending.
type Schedule struct {
	every time.Duration
	due   time.Time
}

// New returns the schedule of client i of n clients offering rate requests per second in all,
// starting at start; nil when rate is 0 or less (closed loop).
func New(start time.Time, rate float64, i, n int) *Schedule {
	if rate <= 0 || n < 1 {
		return nil
	}
	every := time.Duration(float64(n) / rate * float64(time.Second))
	return &Schedule{every: every, due: start.Add(every * time.Duration(i) / time.Duration(n))}
}

// Next waits until the next request is due and returns the time its latency counts from: the
// due time on a schedule, now in a closed loop. ok is false when ctx ended or the request
// would be due after deadline (zero: no deadline).
func (s *Schedule) Next(ctx context.Context, deadline time.Time) (from time.Time, ok bool) {
	if s == nil {
		return time.Now(), ctx.Err() == nil
	}
	from = s.due
	if !deadline.IsZero() && !from.Before(deadline) {
		return from, false
	}
	s.due = s.due.Add(s.every)
	if wait := time.Until(from); wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return from, false
		case <-t.C:
		}
	}
	return from, ctx.Err() == nil
}

// Timeline groups latencies by the second of the load in which their requests were due, to
// show where a run's tail comes from: a p99 set by one stall of seconds reads differently
// from one spread over the run. The zero value is empty; it is not safe for concurrent use.
type Timeline struct {
	secs [][]time.Duration
}

// Add counts a request due at (from the load's start) that took d.
func (tl *Timeline) Add(at, d time.Duration) {
	i := max(int(at/time.Second), 0)
	for len(tl.secs) <= i {
		tl.secs = append(tl.secs, nil)
	}
	tl.secs[i] = append(tl.secs[i], d)
}

// Second is one second of a Timeline: how many requests were due in it and their p50, p99 and
// slowest latency (zero when none were).
type Second struct {
	Requests          int
	P50, P99, Slowest time.Duration
}

// Seconds returns the timeline's seconds in order, from the load's start.
func (tl *Timeline) Seconds() []Second {
	out := make([]Second, len(tl.secs))
	for i, lat := range tl.secs {
		if len(lat) == 0 {
			continue
		}
		s := slices.Clone(lat)
		slices.Sort(s)
		at := func(p int) time.Duration { return s[min(len(s)-1, len(s)*p/100)] }
		out[i] = Second{Requests: len(s), P50: at(50), P99: at(99), Slowest: s[len(s)-1]}
	}
	return out
}

// Write prints one line per second, each starting with prefix.
func (tl *Timeline) Write(w io.Writer, prefix string) {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	for i, s := range tl.Seconds() {
		fmt.Fprintf(w, "%ssecond %3d: %5d requests, p50 %7.1fms p99 %7.1fms slowest %7.1fms\n", prefix, i, s.Requests,
			ms(s.P50), ms(s.P99), ms(s.Slowest))
	}
}
