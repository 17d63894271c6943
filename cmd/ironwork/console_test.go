package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/internal/lockedbuf"
)

func waitText(t *testing.T, b *lockedbuf.Buffer, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(b.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within 20 s in %q", want, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConsoleCommand attaches `ironwork console` to a fake-hardware node's console through
// pipes: it enables the console, echoes what is typed, and leaves on "~.".
func TestConsoleCommand(t *testing.T) {
	url := startServer(t)
	if code, _, errs := cli(t, url, "node", "create", "--driver", "fake-hardware", "--name", "c1"); code != 0 {
		t.Fatal(errs)
	}
	if code, _, errs := cli(t, url, "console", "c1", "--no-enable", "--wait", "1s"); code != 1 || !strings.Contains(errs, "is not enabled") {
		t.Fatalf("--no-enable on a disabled console: %d %q", code, errs)
	}
	stdin, typed := io.Pipe()
	var out, errb lockedbuf.Buffer
	done := make(chan int, 1)
	start := time.Now()
	go func() { done <- runConsole(context.Background(), []string{"c1", "--url", url}, stdin, &out, &errb) }()
	waitText(t, &errb, "type ~. at the start of a line to leave")
	t.Logf("console enabled and attached in %s", time.Since(start))
	typed.Write([]byte("hello console\r"))
	waitText(t, &out, "hello console\r")
	typed.Write([]byte("~~tilde\r"))
	waitText(t, &out, "~tilde\r")
	typed.Write([]byte("~."))
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("~. did not leave the console within 10 s")
	}
	if strings.Contains(out.String(), "~.") {
		t.Errorf("the escape reached the node: %q", out.String())
	}
	// The console stays enabled.
	code, js, errs := cli(t, url, "node", "show", "c1", "-o", "json")
	var n map[string]any
	if code != 0 || json.Unmarshal([]byte(js), &n) != nil || n["console_enabled"] != true {
		t.Fatalf("node after leaving: %d %s %s", code, js, errs)
	}
}

func TestEscaper(t *testing.T) {
	for _, tc := range []struct {
		in, send string
		leave    bool
	}{
		{"abc", "abc", false},
		{"~.", "", true},
		{"ls\r~.rest", "ls\r", true},
		{"ls~.", "ls~.", false},
		{"~~.", "~.", false},
		{"\n~x", "\n~x", false},
		{"a\n~", "a\n", false},
	} {
		var e escaper
		send, leave := e.feed([]byte(tc.in))
		if string(send) != tc.send || leave != tc.leave {
			t.Errorf("%q: sent %q leave %v, want %q %v", tc.in, send, leave, tc.send, tc.leave)
		}
	}
}

// FuzzEscaper checks that keystrokes split anywhere give what they give in one piece, and that
// text without "~" passes unchanged.
func FuzzEscaper(f *testing.F) {
	for _, s := range []string{"abc", "~.", "x\r~.", "~~", "\n~~\n~.", "~"} {
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, in []byte, cut uint8) {
		var whole escaper
		want, wantLeave := whole.feed(in)
		k := int(cut) % (len(in) + 1)
		var split escaper
		a, leave := split.feed(in[:k])
		got := append([]byte{}, a...)
		if !leave {
			b, l2 := split.feed(in[k:])
			got, leave = append(got, b...), l2
		}
		if !bytes.Equal(got, want) || leave != wantLeave {
			t.Fatalf("%q cut at %d: %q %v, in one piece %q %v", in, k, got, leave, want, wantLeave)
		}
		if !bytes.Contains(in, []byte("~")) && (!bytes.Equal(want, in) || wantLeave) {
			t.Fatalf("%q without ~ became %q", in, want)
		}
	})
}
