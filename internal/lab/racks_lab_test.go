package lab_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ironwork/ironwork/internal/lab"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// checkRelayedRack checks a lab whose machine relayed sits on rack 2, behind the router
// namespace's dhcrelay, and whose machine direct sits on the provisioning network: relayed's
// tap is on the rack's bridge in the router namespace, the server's lease store holds each
// machine's addresses from its own rack's range and subnet, dhcrelay forwarded requests and
// replies, and relayed's agent (when the node still records one) was on its rack's subnet.
// TestLabEndToEnd runs it (docs/lab.md, "Racks behind a DHCP relay").
func checkRelayedRack(ctx context.Context, t testing.TB, st *lab.State, dir, subnet string, relayed, direct lab.Node) {
	t.Helper()
	router := st.RouterNetns
	if router == "" || len(st.Racks) != 1 || st.Racks[0].Bridge != lab.RackBridge(2) {
		t.Errorf("state: router %q racks %+v, want one rack on %s", router, st.Racks, lab.RackBridge(2))
		return
	}
	rack2 := st.Racks[0].Subnet
	out, err := exec.Command("ip", "-n", router, "-o", "link", "show", "master", lab.RackBridge(2)).Output()
	if err != nil || !strings.Contains(string(out), " "+relayed.Tap+":") {
		t.Errorf("%s's tap %s is not on %s in %s: %v %s", relayed.Name, relayed.Tap, lab.RackBridge(2), router, err, out)
	}
	store, err := sqlstore.Open(ctx, filepath.Join(dir, "data", "ironwork.db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Errorf("open the server's store: %v", err)
		return
	}
	defer store.Close()
	leases, err := store.Leases(ctx)
	if err != nil {
		t.Error(err)
		return
	}
	want := map[string][3]string{ // MAC: subnet, first, last
		strings.ToLower(direct.MAC):  {subnet + ".0/24", subnet + ".100", subnet + ".199"},
		strings.ToLower(relayed.MAC): {rack2 + ".0/24", rack2 + ".100", rack2 + ".199"},
	}
	seen := map[string]int{}
	for _, l := range leases {
		w, ok := want[strings.ToLower(l.MAC)]
		if !ok {
			continue
		}
		seen[strings.ToLower(l.MAC)]++
		t.Logf("lease %s %s subnet %s", l.MAC, l.IP, l.Subnet)
		if l.Subnet != w[0] || !inRange(l.IP, w[1], w[2]) {
			t.Errorf("lease of %s: %s on %q, want %s..%s on %s", l.MAC, l.IP, l.Subnet, w[1], w[2], w[0])
		}
	}
	for mac := range want {
		if seen[mac] == 0 {
			t.Errorf("no lease of %s in the server's store", mac)
		}
	}
	relayLog, _ := os.ReadFile(filepath.Join(dir, "dhcrelay.log"))
	if !bytes.Contains(relayLog, []byte("Forwarded BOOTREQUEST")) || !bytes.Contains(relayLog, []byte("Forwarded BOOTREPLY")) {
		t.Errorf("dhcrelay's log shows no request and reply forwarded for %s:\n%s", relayed.MAC, tailLines(relayLog, 20))
	}
	var node struct {
		DriverInternalInfo map[string]any `json:"driver_internal_info"`
	}
	if err := st.Client().Do(ctx, http.MethodGet, "/v1/nodes/"+relayed.UUID, nil, &node); err != nil {
		t.Error(err)
		return
	}
	if u, _ := node.DriverInternalInfo["agent_url"].(string); u != "" && !strings.Contains(u, "//"+rack2+".") {
		t.Errorf("%s's agent_url %q, want an address on %s.0/24", relayed.Name, u, rack2)
	}
}

func inRange(ip, first, last string) bool {
	a, f, l := net.ParseIP(ip).To4(), net.ParseIP(first).To4(), net.ParseIP(last).To4()
	return a != nil && bytes.Compare(a, f) >= 0 && bytes.Compare(a, l) <= 0
}
