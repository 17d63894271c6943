package agent

import (
	"strings"
	"testing"
)

func TestParseLANIP(t *testing.T) {
	cases := []struct {
		resp    []byte
		want    string
		wantErr string
	}{
		{[]byte{0, 0x11, 10, 20, 30, 40}, "10.20.30.40", ""},
		{[]byte{0, 0x11, 0, 0, 0, 0}, "", ""},
		{[]byte{0xcc}, "", "completion code 0xcc"},
		{[]byte{0, 0x11, 10}, "", "3 bytes"},
		{nil, "", "empty"},
	}
	for _, c := range cases {
		got, err := parseLANIP(c.resp)
		if got != c.want || (c.wantErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%x: %q, %v; want %q, %q", c.resp, got, err, c.want, c.wantErr)
		}
	}
	if got := lanIPRequest(2); string(got) != "\x02\x03\x00\x00" {
		t.Errorf("request %x", got)
	}
}

// TestBMCAddressWithoutDevice: a machine with no /dev/ipmi0 (the lab's VMs) has no BMC
// address and no error.
func TestBMCAddressWithoutDevice(t *testing.T) {
	addr, err := readBMCAddress(t.TempDir())
	if addr != "" || err != nil {
		t.Errorf("%q, %v", addr, err)
	}
	inv, err := CollectInventory(InventoryOptions{SysRoot: fakeSys(t)})
	if err != nil {
		t.Fatal(err)
	}
	if inv.BMCAddress != nil || inv.BMCV6Address != nil {
		t.Errorf("bmc %v %v", inv.BMCAddress, inv.BMCV6Address)
	}
}
