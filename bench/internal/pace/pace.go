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
