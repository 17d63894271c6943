package instance

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseNetwork(t *testing.T) {
	good := map[string]Network{
		"":     {},
		"dhcp": {},
		"vif=v1,ip=10.0.0.5/24,gateway=10.0.0.1,dns=10.0.0.2,dns=10.0.0.3": {VIF: "v1",
			Address: netip.MustParsePrefix("10.0.0.5/24"), Gateway: netip.MustParseAddr("10.0.0.1"),
			DNS: []netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")}},
		"ip=fd00::5/64": {Address: netip.MustParsePrefix("fd00::5/64")},
	}
	for in, want := range good {
		got, err := ParseNetwork(in)
		if err != nil {
			t.Errorf("ParseNetwork(%q): %v", in, err)
			continue
		}
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
			cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
			t.Errorf("ParseNetwork(%q): -want +got\n%s", in, diff)
		}
	}
	bad := map[string]string{
		"ip=10.0.0.5":                       "ip",
		"gateway=10.0.0.1":                  "needs a static ip",
		"ip=10.0.0.5/24,gateway=10.0.1.1":   "outside 10.0.0.0/24",
		"mtu=9000":                          "unknown key",
		"vif":                               "not key=value",
		"ip=10.0.0.5/24,dns=not-an-address": "dns",
	}
	for in, want := range bad {
		if _, err := ParseNetwork(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseNetwork(%q) = %v, want an error with %q", in, err, want)
		}
	}
}

func TestRequestValidation(t *testing.T) {
	ok := Request{ResourceClass: "baremetal", Image: "http://10.0.0.1/img.raw", Hostname: "db-1.example.org",
		SSHKeys: []string{"ssh-ed25519 AAAAC3Nza me@host"}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid request refused: %v", err)
	}
	cases := map[string]func(*Request){
		"a resource class":   func(r *Request) { r.ResourceClass = "" },
		"an image URL":       func(r *Request) { r.Image = "" },
		"not a valid host":   func(r *Request) { r.Hostname = "db_1" },
		"is not an http":     func(r *Request) { r.Image = "ftp://x/y" },
		"not http or local":  func(r *Request) { r.DownloadSource = "swift" },
		"an SSH public key":  func(r *Request) { r.SSHKeys = []string{"hello"} },
		"valid host name (l": func(r *Request) { r.Hostname = strings.Repeat("a", 64) },
	}
	for want, mutate := range cases {
		r := ok
		mutate(&r)
		if err := r.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
}

func TestInstanceInfoChecksums(t *testing.T) {
	sha256 := strings.Repeat("ab", 32)
	cases := []struct {
		sum  string
		want map[string]any
	}{
		{strings.Repeat("A", 32), map[string]any{"image_checksum": strings.Repeat("a", 32)}},
		{sha256, map[string]any{"image_os_hash_algo": "sha256", "image_os_hash_value": sha256}},
		{strings.Repeat("c", 128), map[string]any{"image_os_hash_algo": "sha512", "image_os_hash_value": strings.Repeat("c", 128)}},
		{"SHA256:" + strings.ToUpper(sha256), map[string]any{"image_os_hash_algo": "sha256", "image_os_hash_value": sha256}},
		{"http://h/SHA256SUMS", map[string]any{"image_checksum": "http://h/SHA256SUMS"}},
	}
	for _, c := range cases {
		got := map[string]any{}
		for _, op := range instanceInfo(Request{Image: "http://h/i.raw", Checksum: c.sum}) {
			if op.Op != "add" || !strings.HasPrefix(op.Path, "/instance_info/") {
				t.Fatalf("unexpected op %+v", op)
			}
			got[strings.TrimPrefix(op.Path, "/instance_info/")] = op.Value
		}
		c.want["image_source"] = "http://h/i.raw"
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("checksum %q: -want +got\n%s", c.sum, diff)
		}
	}
}

func TestConfigDriveContent(t *testing.T) {
	req := Request{Hostname: "web-1", SSHKeys: []string{"ssh-ed25519 AAAA alice@laptop", "ssh-rsa BBBB", "ssh-rsa CCCC alice@laptop"},
		UserData: []byte("#cloud-config\n")}
	nets := []Network{{}, {Address: netip.MustParsePrefix("192.168.7.9/20"), Gateway: netip.MustParseAddr("192.168.0.1"),
		DNS: []netip.Addr{netip.MustParseAddr("192.168.0.53")}}}
	inst := Instance{Node: "n-uuid", Allocation: "a-uuid", NICs: []NIC{{VIF: "v0", MAC: "52:54:00:00:00:01"}, {VIF: "v1", MAC: "52:54:00:00:00:02"}}}
	cd := configDrive(req, inst, nets)
	meta := cd["meta_data"].(map[string]any)
	if meta["hostname"] != "web-1" || meta["uuid"] != "n-uuid" {
		t.Errorf("meta_data: %v", meta)
	}
	wantKeys := map[string]string{"alice@laptop": "ssh-ed25519 AAAA alice@laptop", "1": "ssh-rsa BBBB", "alice@laptop-2": "ssh-rsa CCCC alice@laptop"}
	if diff := cmp.Diff(wantKeys, meta["public_keys"]); diff != "" {
		t.Errorf("public_keys: -want +got\n%s", diff)
	}
	if cd["user_data"] != "#cloud-config\n" {
		t.Errorf("user_data: %q", cd["user_data"])
	}
	nd := cd["network_data"].(map[string]any)
	networks := nd["networks"].([]any)
	if n0 := networks[0].(map[string]any); n0["type"] != "ipv4_dhcp" || n0["link"] != "nic0" {
		t.Errorf("network 0: %v", n0)
	}
	n1 := networks[1].(map[string]any)
	if n1["type"] != "ipv4" || n1["ip_address"] != "192.168.7.9" || n1["netmask"] != "255.255.240.0" {
		t.Errorf("network 1: %v", n1)
	}
	if r := n1["routes"].([]any)[0].(map[string]any); r["gateway"] != "192.168.0.1" || r["network"] != "0.0.0.0" {
		t.Errorf("route: %v", r)
	}
	if l := nd["links"].([]any)[1].(map[string]any); l["ethernet_mac_address"] != "52:54:00:00:00:02" {
		t.Errorf("link 1: %v", l)
	}
	if s := nd["services"].([]any); len(s) != 1 || s[0].(map[string]any)["address"] != "192.168.0.53" {
		t.Errorf("services: %v", s)
	}
	if got := netmask(netip.MustParsePrefix("fd00::1/64")); got != "ffff:ffff:ffff:ffff::" {
		t.Errorf("IPv6 netmask: %s", got)
	}
}

// TestInstanceInfoOCI: an oci:// image goes with its pull secret and download source and
// needs no checksum.
func TestInstanceInfoOCI(t *testing.T) {
	r := Request{ResourceClass: "baremetal", Image: "oci://registry.example:5000/disks/debian:12", Hostname: "h1",
		PullSecret: "dXNlcjpwYXNz", DownloadSource: "local"}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for _, op := range instanceInfo(r) {
		got[op.Path] = op.Value
	}
	want := map[string]any{"/instance_info/image_source": r.Image, "/instance_info/image_pull_secret": "dXNlcjpwYXNz",
		"/instance_info/image_download_source": "local"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("-want +got\n%s", diff)
	}
}
