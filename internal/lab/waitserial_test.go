package lab_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/internal/lab"
)

// TestWaitSerialWaitsForTheWholeLine: a console log holding the marker's line only in part
// (QEMU writes it a character at a time) is read again until the line ends; the line before
// offset is not looked at; a line that never ends is an error that shows it.
func TestWaitSerialWaitsForTheWholeLine(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "serial.log")
	old := "MARKER from an earlier boot\n"
	full := "MARKER hostname=lab-web-1 keys=lab@ironwork network_data=yes"
	if err := os.WriteFile(path, []byte(old+"booting\n"+full[:20]), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(time.Second) // WaitSerial reads the half line a few times meanwhile
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		f.WriteString(full[20:] + "\nnext line\n")
	}()
	line, err := lab.WaitSerial(ctx, path, int64(len(old)), "MARKER", 20*time.Second)
	<-done
	if err != nil || line != full {
		t.Fatalf("WaitSerial: %q, %v; want the whole line %q", line, err, full)
	}

	half := filepath.Join(t.TempDir(), "half.log")
	if err := os.WriteFile(half, []byte("MARKER never end"), 0o644); err != nil {
		t.Fatal(err)
	}
	if line, err := lab.WaitSerial(ctx, half, 0, "MARKER", 600*time.Millisecond); err == nil || !strings.Contains(err.Error(), "MARKER never end") {
		t.Errorf("a line that never ends: %q, %v; want an error showing it", line, err)
	}
}
