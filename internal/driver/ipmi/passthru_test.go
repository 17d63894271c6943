package ipmi

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseRawBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // netfn cmd data, or the error's start
	}{
		{"0x06 0x01", "06 01 []"},
		{"0x2e 0xcc 0x5e 0x2b 0x00", "2e cc [5e 2b 00]"},
		{"  6   1 ", "06 01 []"},
		{"0x06", "raw_bytes \"0x06\" needs"},
		{"", "raw_bytes \"\" needs"},
		{"0x06 0x100", "raw_bytes \"0x06 0x100\": \"0x100\" is not a byte"},
		{"0x40 0x01", "raw_bytes \"0x40 0x01\": network function 0x40"},
		{"0x06 -1", "raw_bytes \"0x06 -1\": \"-1\" is not a byte"},
	} {
		got := ""
		r, err := parseRawBytes(tc.in)
		if err != nil {
			got = err.Error()
		} else {
			got = fmt.Sprintf("%02x %02x [% x]", uint8(r.netFn), r.cmd, r.data)
		}
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("parseRawBytes(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzParseRawBytes: send_raw's argument never panics, and what it accepts is a network
// function of 6 bits, a command and at most 255 data bytes.
func FuzzParseRawBytes(f *testing.F) {
	for _, s := range []string{"0x06 0x01", "0x2e 0xcc 0x5e 0x2b 0x00", "6 1", "0x", "0x06 0x", "ff ff ff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseRawBytes(s)
		if err != nil {
			return
		}
		if r.netFn > 0x3f || len(r.data) > 255 || len(strings.Fields(s)) != len(r.data)+2 {
			t.Errorf("parseRawBytes(%q) accepted %+v", s, r)
		}
	})
}
