package conductor

import "sync/atomic"

// atomicCounter caps concurrent operations of one kind; a nil counter allows everything.
type atomicCounter struct {
	n     *atomic.Int64
	limit int
}

func (a *atomicCounter) take() bool {
	if a == nil {
		return true
	}
	if a.n.Add(1) > int64(a.limit) {
		a.n.Add(-1)
		return false
	}
	return true
}

func (a *atomicCounter) give() {
	if a != nil {
		a.n.Add(-1)
	}
}
