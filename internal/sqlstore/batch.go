package sqlstore

import (
	"context"
	"slices"
	"sync"
)

// batcher gathers the requests that arrive while a batch is running into the next batch: the
// first request to find nothing running leads (runs its batch of one); the requests that
// queued meanwhile go, when it is done, to the first of them, who leads them as the next batch.
// A request never joins a batch already started, and nobody waits behind more than one batch
// before its own. R carries a request and its answer (a pointer the batch's run fills in).
type batcher[R any] struct {
	mu      sync.Mutex
	waiting []*batchItem[R] // queued, not started
	running bool            // a batch is being run
}

type batchItem[R any] struct {
	req R
	// done is closed when req is answered, or when this item is to lead batch.
	done  chan struct{}
	batch []*batchItem[R]
}

// do runs req in a batch; run, called by the batch's leader with the batch's requests in the
// order they arrived, answers every one of them. do returns ctx's error when the caller gave up
// before its request was taken into a batch (its request is then not run); otherwise nil, once
// req is answered.
func (b *batcher[R]) do(ctx context.Context, req R, run func(batch []R)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	it := &batchItem[R]{req: req, done: make(chan struct{})}
	b.mu.Lock()
	if !b.running {
		b.running = true
		b.mu.Unlock()
		b.lead([]*batchItem[R]{it}, run)
		return nil
	}
	b.waiting = append(b.waiting, it)
	b.mu.Unlock()
	select {
	case <-it.done:
	case <-ctx.Done():
		b.mu.Lock()
		if i := slices.Index(b.waiting, it); i >= 0 {
			b.waiting = slices.Delete(b.waiting, i, i+1)
			b.mu.Unlock()
			return ctx.Err()
		}
		b.mu.Unlock()
		<-it.done // taken into a batch: answered, or chosen to lead it, soon
	}
	if it.batch != nil {
		b.lead(it.batch, run)
	}
	return nil
}

// lead runs batch, answers its waiting requests, and hands the requests that queued meanwhile
// to the first of them, or ends the run when none did.
func (b *batcher[R]) lead(batch []*batchItem[R], run func(batch []R)) {
	reqs := make([]R, len(batch))
	for i, it := range batch {
		reqs[i] = it.req
	}
	run(reqs)
	b.mu.Lock()
	next := b.waiting
	b.waiting = nil
	if len(next) == 0 {
		b.running = false
	}
	b.mu.Unlock()
	for _, it := range batch {
		if it.batch == nil { // a leader chosen by its predecessor (its batch set) was woken already
			close(it.done)
		}
	}
	if len(next) > 0 {
		next[0].batch = next
		close(next[0].done)
	}
}
