package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/events"
)

// EventsPath is the server-sent events stream of node changes, Ironwork's own (Ironic has none).
const EventsPath = "/v1/ironwork/events"

// EventSource hands out subscriptions to node changes; *events.Hub implements it.
type EventSource interface {
	Subscribe(buffer int) *events.Subscription
}

// keepAlive is how often an idle stream gets a comment line, so that proxies and clients see
// it is alive.
const keepAlive = 15 * time.Second

func (s *Server) eventRoutes() {
	s.handle("GET "+EventsPath, s.eventStream)
}

// eventStream serves GET /v1/ironwork/events: a text/event-stream of node changes. Every event
// is "event: node" or "event: node.deleted" with the node's streamed fields as JSON data and
// its sequence number as id. The stream opens with "event: ready" once the subscription is in
// place: a client that reads the nodes after it misses no change. ?node=UUID|NAME keeps one
// node's events; ?buffer=N sets the events held for a slow reader (16..4096, default 256).
// A reader that falls a full buffer behind gets "event: dropped" and the stream ends.
func (s *Server) eventStream(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Events == nil {
		return ironwork.Errorf(ironwork.EUNAVAILABLE, "This server does not stream events.")
	}
	only := ""
	if ident := r.URL.Query().Get("node"); ident != "" {
		n, err := s.store.GetNode(r.Context(), ident)
		if err != nil {
			return err
		}
		only = n.UUID
	}
	buffer := events.DefaultBuffer
	if v := r.URL.Query().Get("buffer"); v != "" {
		b, err := strconv.Atoi(v)
		if err != nil || b < 16 || b > 4096 {
			return invalid("buffer must be a number from 16 to 4096, not %q", v)
		}
		buffer = b
	}
	sub := s.opts.Events.Subscribe(buffer)
	defer sub.Close()
	rc := http.NewResponseController(w)
	// The server's write timeout is for ordinary answers; a stream lasts as long as its reader.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, "retry: 2000\nevent: ready\ndata: {}\n\n"); err != nil {
		return nil
	}
	if rc.Flush() != nil {
		return nil
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-sub.Closed():
			return nil // the server shuts down
		case <-sub.Dropped():
			fmt.Fprint(w, "event: dropped\ndata: {\"reason\": \"the reader fell behind\"}\n\n")
			rc.Flush()
			return nil
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return nil
			}
		case ev := <-sub.C():
			if only != "" && ev.Node.UUID != only {
				continue
			}
			data, err := json.Marshal(ev)
			if err != nil {
				return nil
			}
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.Type, data); err != nil {
				return nil
			}
		}
		// Send what is ready at once, but write several queued events with one flush.
		if len(sub.C()) == 0 && rc.Flush() != nil {
			return nil
		}
	}
}
