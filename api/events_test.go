package api

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReadSSE(t *testing.T) {
	stream := "retry: 2000\nevent: ready\ndata: {}\n\n: keep-alive\n\nid: 7\r\nevent: node\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\ndata:plain\n\nevent: cut\ndata: x"
	r := bufio.NewReader(strings.NewReader(stream))
	var got []SSE
	for {
		ev, err := ReadSSE(r)
		if err != nil {
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("end: %v, want an unexpected EOF for the cut event", err)
			}
			break
		}
		got = append(got, ev)
	}
	want := []SSE{{Event: "ready", Data: "{}"}, {Event: "node", Data: "{\"a\":\n1}", ID: "7"}, {Event: "message", Data: "plain"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
	if _, err := ReadSSE(bufio.NewReader(strings.NewReader(": only a comment\n\n"))); !errors.Is(err, io.EOF) {
		t.Errorf("a stream of comments: %v, want EOF", err)
	}
	huge := "data: " + strings.Repeat("x", maxEventBytes) + "\n\n"
	if _, err := ReadSSE(bufio.NewReader(strings.NewReader(huge))); !errors.Is(err, ErrEventTooLarge) {
		t.Errorf("a huge event: %v, want ErrEventTooLarge", err)
	}
}

func FuzzReadSSE(f *testing.F) {
	f.Add("event: node\nid: 1\ndata: {\"seq\":1}\n\n")
	f.Add(": c\n\nretry: 1\ndata: a\ndata: b\n\n")
	f.Add("data\r\n\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		r := bufio.NewReader(strings.NewReader(s))
		for range 1000 {
			ev, err := ReadSSE(r)
			if err != nil {
				return
			}
			if ev.Event == "" {
				t.Fatalf("an event without a type: %+v", ev)
			}
			if len(ev.Data) > len(s) {
				t.Fatalf("data longer than the stream: %d > %d", len(ev.Data), len(s))
			}
		}
	})
}
