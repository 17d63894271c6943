package tftp

import (
	"context"
	"net"
	"runtime"
	"testing"
	"time"
)

// FuzzServer sends arbitrary datagrams to a live server on loopback: req to the listening port,
// then follow to the port of any transfer it starts. The server must not panic (that would end
// the fuzzing process), Serve must return when its context ends, and no goroutine may be left
// behind.
func FuzzServer(f *testing.F) {
	dir := f.TempDir()
	writeFile(f, dir, "f", 1000)
	writeFile(f, dir, "big", 100_000)
	f.Add(rrq(opRRQ, "f", "octet"), []byte{0, 4, 0, 1})
	f.Add(rrq(opRRQ, "/big", "octet", "blksize", "8", "windowsize", "100", "tsize", "0"), []byte{0, 4, 0, 0})
	f.Add(rrq(opRRQ, "f", "netascii", "timeout", "1"), []byte{0, 5, 0, 8, 'n', 'o', 0})
	f.Add(rrq(opWRQ, "f", "octet"), []byte{0, 3, 0, 1, 'x'})
	f.Add(rrq(opRRQ, "../f", "octet"), []byte{})
	f.Add([]byte{0, 4, 0, 1}, []byte{0, 4, 0xff, 0xff})
	f.Add([]byte{0xff}, []byte{0, 4})
	f.Fuzz(func(t *testing.T, req, follow []byte) {
		before := runtime.NumGoroutine()
		srv, err := NewDir(dir, Config{MaxTransfers: 2, Timeout: 20 * time.Millisecond, Retries: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx, conn) }()

		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		server := conn.LocalAddr().(*net.UDPAddr)
		c.WriteToUDP(req, server)
		buf := make([]byte, 70000)
		for range 3 {
			c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
			_, from, err := c.ReadFromUDP(buf)
			if err != nil {
				break
			}
			if from.Port != server.Port {
				c.WriteToUDP(follow, from)
			}
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Serve did not return within 5s of cancel")
		}
		// Serve waited for its transfers; give exited goroutines a moment to be counted out.
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
	})
}
