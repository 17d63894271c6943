package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCall(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, `{"version": %q, "type": %q, "body": %s}`, r.Header.Get(VersionHeader), r.Header.Get("Content-Type"), b)
		case "/ironic-error":
			w.WriteHeader(http.StatusConflict)
			fmt.Fprint(w, `{"error_message": "{\"faultstring\": \"Node n1 is locked by host h1, please retry after the current operation is completed.\"}"}`)
		case "/big":
			fmt.Fprintf(w, `{"x": %q}`, strings.Repeat("a", 2000))
		case "/empty":
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	defer srv.Close()
	ctx := context.Background()

	var got struct {
		Version, Type string
		Body          map[string]int
	}
	err := Call(ctx, nil, Request{Method: http.MethodPost, URL: srv.URL + "/echo", Header: http.Header{VersionHeader: {"1.68"}},
		Body: map[string]int{"a": 1}}, &got, nil)
	if err != nil || got.Version != "1.68" || got.Type != "application/json" || got.Body["a"] != 1 {
		t.Fatalf("echo: %+v, %v", got, err)
	}

	err = Call(ctx, nil, Request{Method: http.MethodGet, URL: srv.URL + "/ironic-error"}, nil, nil)
	if !IsStatus(err, http.StatusConflict) || !strings.Contains(err.Error(), "locked by host h1") || errors.Is(err, ErrNoAnswer) {
		t.Fatalf("error answer: %v", err)
	}

	if err := Call(ctx, nil, Request{Method: http.MethodGet, URL: srv.URL + "/big", Limit: 1000}, &got, nil); err == nil || !strings.Contains(err.Error(), "larger than 1000") {
		t.Fatalf("oversized answer: %v", err)
	}
	if err := Call(ctx, nil, Request{Method: http.MethodPost, URL: srv.URL + "/empty"}, &got, nil); err != nil {
		t.Fatalf("empty 202: %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := "http://" + ln.Addr().String()
	ln.Close()
	var sent Sent
	err = Call(ctx, nil, Request{Method: http.MethodPost, URL: gone + "/v1/commands/?agent_token=SECRET", Body: 1}, nil, &sent)
	if !errors.Is(err, ErrNoAnswer) || sent.Written || strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), gone+"/v1/commands/") {
		t.Fatalf("refused call: %v (sent %+v): want ErrNoAnswer, naming the URL without its query", err, sent)
	}
}
