package lab_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// labT is a lab test's *testing.T that keeps the messages of the test's failures (its
// subtests' too), so that a failed test can give them again as its last lines, after the
// tails of the lab's logs it dumps. A CI report shows the end of a failed test's output, and
// a few hundred lines of logs would otherwise push the reason for the failure out of it.
type labT struct {
	*testing.T
	root *labT // the top-level test's, which keeps the messages
	mu   sync.Mutex
	msgs []string
}

func newLabT(t *testing.T) *labT {
	l := &labT{T: t}
	l.root = l
	return l
}

func (l *labT) keep(msg string) {
	if l != l.root {
		msg = strings.TrimPrefix(l.Name(), l.root.Name()+"/") + ": " + msg
	}
	r := l.root
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, msg)
}

// Error is testing.T's Error, kept for the recap.
func (l *labT) Error(args ...any) {
	l.Helper()
	msg := strings.TrimSuffix(fmt.Sprintln(args...), "\n")
	l.keep(msg)
	l.T.Error(msg)
}

// Errorf is testing.T's Errorf, kept for the recap.
func (l *labT) Errorf(format string, args ...any) {
	l.Helper()
	msg := fmt.Sprintf(format, args...)
	l.keep(msg)
	l.T.Error(msg)
}

// Fatal is testing.T's Fatal, kept for the recap.
func (l *labT) Fatal(args ...any) {
	l.Helper()
	msg := strings.TrimSuffix(fmt.Sprintln(args...), "\n")
	l.keep(msg)
	l.T.Fatal(msg)
}

// Fatalf is testing.T's Fatalf, kept for the recap.
func (l *labT) Fatalf(format string, args ...any) {
	l.Helper()
	msg := fmt.Sprintf(format, args...)
	l.keep(msg)
	l.T.Fatal(msg)
}

// Run runs f as a subtest whose failures the test's recap gives too.
func (l *labT) Run(name string, f func(t *labT)) bool {
	return l.T.Run(name, func(t *testing.T) { f(&labT{T: t, root: l.root}) })
}

// failed returns the failure messages kept so far.
func (l *labT) failed() []string {
	r := l.root
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

// dumpIfFailed, deferred by a lab test, logs the last lines of the named files of the lab's
// directory when the test has failed, then the test's failure messages again.
func (l *labT) dumpIfFailed(dir string, lines int, files ...string) {
	l.Helper()
	if !l.Failed() {
		return
	}
	for _, f := range files {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		l.Logf("--- %s (tail) ---\n%s", f, tailLines(b, lines))
	}
	l.recap()
}

// recap logs the test's failure messages again, the first lines of each.
func (l *labT) recap() {
	l.Helper()
	msgs := l.failed()
	if len(msgs) == 0 {
		return
	}
	for i, m := range msgs {
		msgs[i] = strings.ReplaceAll(firstLines(m, recapLines), "\n", "\n      ")
	}
	l.Logf("%s failed; its failures again, after the logs above:\n    %s", l.root.Name(), strings.Join(msgs, "\n    "))
}

// recapLines is how many lines of each failure message the recap gives.
const recapLines = 3

// firstLines returns s's first n lines, and how many more it had.
func firstLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) <= n {
		return s
	}
	return fmt.Sprintf("%s\n(%d more lines, above)", strings.Join(lines[:n], "\n"), len(lines)-n)
}

// TestLabTKeepsFailures checks the recap's bookkeeping (not the forwarding to testing.T's
// Error and Fatal, which would fail this test): messages of the test and of its subtests, in
// order, the subtests' named, and the recap's truncation.
func TestLabTKeepsFailures(tt *testing.T) {
	t := newLabT(tt)
	t.keep("lab up: no kernel")
	t.Run("a-node", func(t *labT) {
		t.keep("deploy: timed out")
		t.Run("inner", func(t *labT) { t.keep("serial: no marker") })
	})
	want := []string{"lab up: no kernel", "a-node: deploy: timed out", "a-node/inner: serial: no marker"}
	if got := t.failed(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("kept %q, want %q", got, want)
	}
	if got := firstLines("one\ntwo\nthree\nfour\nfive", 3); got != "one\ntwo\nthree\n(2 more lines, above)" {
		t.Errorf("firstLines of five lines: %q", got)
	}
	if got := firstLines("one\ntwo", 3); got != "one\ntwo" {
		t.Errorf("firstLines of two lines: %q", got)
	}
}
