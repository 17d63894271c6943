package agent

import "time"

// ProgressReport is one progress callback's worth of numbers.
type ProgressReport struct {
	Written        int64 // bytes of the image placed on the target so far
	Total          int64 // bytes the image will cover, -1 if not known yet
	BytesPerSecond float64
	Elapsed        time.Duration
}

// Progress receives reports at most about once per second, from the
// goroutine doing the work; it must return quickly.
type Progress func(ProgressReport)

const progressInterval = time.Second

// meter rate-limits progress callbacks.
type meter struct {
	fn      Progress
	start   time.Time
	last    time.Time
	written int64
	total   int64
}

func newMeter(fn Progress, total int64) *meter {
	now := time.Now()
	return &meter{fn: fn, start: now, last: now, total: total}
}

func (m *meter) add(n int64) {
	m.written += n
	if m.fn == nil {
		return
	}
	now := time.Now()
	if now.Sub(m.last) < progressInterval {
		return
	}
	m.last = now
	m.report(now)
}

func (m *meter) report(now time.Time) {
	el := now.Sub(m.start)
	rate := 0.0
	if s := el.Seconds(); s > 0 {
		rate = float64(m.written) / s
	}
	m.fn(ProgressReport{Written: m.written, Total: m.total, BytesPerSecond: rate, Elapsed: el})
}

// finish sends a last report so callers see the final count.
func (m *meter) finish() {
	if m.fn != nil {
		m.report(time.Now())
	}
}
