package vbmc

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/driver/ipmi"
	"github.com/ironwork/ironwork/internal/lockedbuf"
)

// machineLine serves a machine's serial socket until stop: each connection is greeted with
// the boot's name.
func machineLine(t *testing.T, sock, boot string) (stop func()) {
	t.Helper()
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c
			c.Write([]byte(boot + " booting\r\n"))
		}
	}()
	return func() {
		ln.Close()
		for {
			select {
			case c := <-conns:
				c.Close()
			default:
				return
			}
		}
	}
}

// TestSerialLineOutlivesTheMachine activates SOL while the machine is off (no socket), then
// "powers it on" twice: one SOL session sees both boots, as on a BMC whose serial port exists
// whatever the host's power.
func TestSerialLineOutlivesTheMachine(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "serial.sock")
	v, err := Start(Config{Username: "admin", Password: "password", Machines: []MachineConfig{{Name: "vm1",
		IPMIListen: "127.0.0.1:0", Command: []string{"sh", "-c", "exec sleep 300", "vm"}, SerialSocket: sock}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go v.Serve(ctx)
	defer func() { cancel(); v.Close() }()
	host, port, _ := strings.Cut(v.IPMIAddrs["vm1"], ":")
	tk := &conductor.Task{Node: &ironwork.Node{UUID: "sol", DriverInfo: ironwork.JSONObject{"ipmi_address": host,
		"ipmi_port": port, "ipmi_username": "admin", "ipmi_password": "password"}}}
	in, typed := io.Pipe()
	defer typed.Close()
	var out lockedbuf.Buffer
	solCtx, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- (ipmi.Interface{}).AttachConsole(solCtx, tk, in, &out) }()
	wait := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), want) {
			select {
			case err := <-done:
				t.Fatalf("the SOL session ended (%v) before %q; output %q", err, want, out.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q over SOL within 10 s: %q", want, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	time.Sleep(500 * time.Millisecond) // the session runs with the machine off
	off := machineLine(t, sock, "first")
	wait("first booting")
	off()
	time.Sleep(500 * time.Millisecond) // off again: the session stays
	off = machineLine(t, sock, "second")
	defer off()
	wait("second booting")
	stop()
	if err := <-done; err != nil {
		t.Fatalf("console ended with %v", err)
	}
}
