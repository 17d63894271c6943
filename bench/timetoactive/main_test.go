package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestSplit reads a log of two interleaved deploys, one through a reboot into the ramdisk and
// one on fast track, and checks each part of the table.
func TestSplit(t *testing.T) {
	var out bytes.Buffer
	if err := run("testdata", &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		// 18.0 s: firmware 2.0 (power on -> lease), boot 12.0 (lease -> lookup), image 2.0, own 2.0.
		"| n-normal | 18.0 s | 2.0 s | 12.0 s | 2.0 s | 2.0 s | no |",
		"| n-fast | 3.0 s | 0.0 s | 0.0 s | 2.0 s | 1.0 s | yes |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
}

func TestParseLine(t *testing.T) {
	f, ok := parseLine(`time=2026-12-03T10:00:00Z level=INFO msg="a \"b\" c" k=v e=""`)
	if !ok || f["msg"] != `a "b" c` || f["k"] != "v" || f["e"] != "" {
		t.Errorf("parseLine = %v, %v", f, ok)
	}
	for _, bad := range []string{"Ironwork API on http://x", `time=1 msg="unterminated`, ""} {
		if _, ok := parseLine(bad); ok {
			t.Errorf("parseLine(%q) accepted", bad)
		}
	}
}

// FuzzParseLine: no line makes the parser panic or loop.
func FuzzParseLine(f *testing.F) {
	f.Add(`time=2026-12-03T10:00:00Z level=INFO msg="a \"b\" c" k=v e=""`)
	f.Add(`time="x\`)
	f.Fuzz(func(t *testing.T, line string) { parseLine(line) })
}
