package bmctest

import (
	"net"
	"os/exec"
	"strconv"
	"testing"
)

// TestUDPDaemonMovesOffATakenPort: a simulator whose port another socket took in the meantime
// exits; it is started again on another port, which it listens on.
func TestUDPDaemonMovesOffATakenPort(t *testing.T) {
	bin := requireTool(t, "fakebmc", "python3-pyghmi")
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := taken.LocalAddr().(*net.UDPAddr).Port
	var tried []int
	port := startUDPDaemon(t, "fakebmc", func(port int) *exec.Cmd {
		tried = append(tried, port)
		return exec.Command("/usr/bin/python3", bin, "--port", strconv.Itoa(port))
	}, busy)
	if port == busy || len(tried) < 2 || tried[0] != busy {
		t.Fatalf("listening on %d after trying %v; %d was taken", port, tried, busy)
	}
}
