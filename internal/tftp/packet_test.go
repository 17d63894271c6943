package tftp

import (
	"bytes"
	"errors"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// rrq builds a request packet; opts are name, value pairs.
func rrq(op uint16, name, mode string, opts ...string) []byte {
	b := []byte{byte(op >> 8), byte(op)}
	for _, s := range append([]string{name, mode}, opts...) {
		b = append(b, s...)
		b = append(b, 0)
	}
	return b
}

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want request
		bad  bool
	}{
		{name: "plain", in: rrq(opRRQ, "/pxelinux.0", "octet"),
			want: request{op: opRRQ, filename: "/pxelinux.0", mode: "octet"}},
		{name: "mode case", in: rrq(opRRQ, "f", "NetASCII"),
			want: request{op: opRRQ, filename: "f", mode: "netascii"}},
		{name: "wrq", in: rrq(opWRQ, "f", "octet"),
			want: request{op: opWRQ, filename: "f", mode: "octet"}},
		{name: "options", in: rrq(opRRQ, "f", "octet", "BLKSIZE", "1428", "tsize", "0", "windowsize", "8"),
			want: request{op: opRRQ, filename: "f", mode: "octet", options: []option{
				{"blksize", "1428"}, {"tsize", "0"}, {"windowsize", "8"}}}},
		{name: "repeated option keeps first", in: rrq(opRRQ, "f", "octet", "blksize", "1428", "blksize", "8"),
			want: request{op: opRRQ, filename: "f", mode: "octet", options: []option{{"blksize", "1428"}}}},
		{name: "NUL padding", in: append(rrq(opRRQ, "f", "octet", "tsize", "0"), 0, 0, 0),
			want: request{op: opRRQ, filename: "f", mode: "octet", options: []option{{"tsize", "0"}}}},
		{name: "name without value", in: rrq(opRRQ, "f", "octet", "tsize"),
			want: request{op: opRRQ, filename: "f", mode: "octet", options: []option{{"tsize", ""}}}},
		{name: "empty", in: nil, bad: true},
		{name: "one byte", in: []byte{0}, bad: true},
		{name: "data opcode", in: rrq(opDATA, "f", "octet"), bad: true},
		{name: "no mode", in: rrq(opRRQ, "f", "")[:4], bad: true},
		{name: "unterminated", in: []byte{0, 1, 'f', 0, 'o', 'c'}, bad: true},
		{name: "empty filename", in: rrq(opRRQ, "", "octet"), bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRequest(tt.in)
			if tt.bad {
				if !errors.Is(err, errMalformed) {
					t.Fatalf("parseRequest(%q) = %+v, %v; want errMalformed", tt.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseRequest(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(request{}, option{})); diff != "" {
				t.Errorf("parseRequest(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseReply(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want reply
		bad  bool
	}{
		{name: "ack", in: []byte{0, 4, 0xff, 0xfe}, want: reply{op: opACK, block: 65534}},
		{name: "ack with padding", in: []byte{0, 4, 0, 1, 0, 0}, want: reply{op: opACK, block: 1}},
		{name: "error", in: appendError(nil, errOptionsRefused, "no"), want: reply{op: opERROR, code: 8, msg: "no"}},
		{name: "error unterminated", in: []byte{0, 5, 0, 1, 'x'}, want: reply{op: opERROR, code: 1, msg: "x"}},
		{name: "short", in: []byte{0, 4, 0}, bad: true},
		{name: "data", in: []byte{0, 3, 0, 1, 'x'}, bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseReply(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("parseReply(%q) = %+v; want an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseReply(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(reply{})); diff != "" {
				t.Errorf("parseReply (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNegotiate(t *testing.T) {
	cfg := Config{MaxBlockSize: 1468}.withDefaults()
	opts := func(kv ...string) request {
		r := request{op: opRRQ, filename: "f", mode: modeOctet}
		for i := 0; i < len(kv); i += 2 {
			r.options = append(r.options, option{kv[i], kv[i+1]})
		}
		return r
	}
	tests := []struct {
		name string
		req  request
		size int64
		want params
	}{
		{name: "none", req: opts(), size: 10,
			want: params{blksize: 512, window: 1, timeout: DefaultTimeout}},
		{name: "unknown and invalid ignored", req: opts("multicast", "", "blksize", "7", "timeout", "0", "windowsize", "0", "tsize", "x1"), size: 10,
			want: params{blksize: 512, window: 1, timeout: DefaultTimeout, oack: []option{{"tsize", "10"}}}},
		{name: "blksize capped", req: opts("blksize", "65464"), size: 10,
			want: params{blksize: 1468, window: 1, timeout: DefaultTimeout, oack: []option{{"blksize", "1468"}}}},
		{name: "timeout", req: opts("timeout", "3"), size: 10,
			want: params{blksize: 512, window: 1, timeout: 3e9, oack: []option{{"timeout", "3"}}}},
		{name: "timeout too big ignored", req: opts("timeout", "256"), size: 10,
			want: params{blksize: 512, window: 1, timeout: DefaultTimeout}},
		{name: "tsize unknown size", req: opts("tsize", "0"), size: -1,
			want: params{blksize: 512, window: 1, timeout: DefaultTimeout}},
		{name: "tsize of an empty file left out", req: opts("tsize", "0"), size: 0,
			want: params{blksize: 512, window: 1, timeout: DefaultTimeout}},
		{name: "windowsize bounded by memory", req: opts("windowsize", "65535", "blksize", "1024"), size: 10,
			want: params{blksize: 1024, window: maxWindowBytes / 1024, timeout: DefaultTimeout,
				oack: []option{{"windowsize", strconv.Itoa(maxWindowBytes / 1024)}, {"blksize", "1024"}}}},
		{name: "windowsize", req: opts("windowsize", "8"), size: 10,
			want: params{blksize: 512, window: 8, timeout: DefaultTimeout, oack: []option{{"windowsize", "8"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := negotiate(tt.req, tt.size, cfg)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(params{}, option{})); diff != "" {
				t.Errorf("negotiate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNetascii(t *testing.T) {
	in := "a\nb\r c\r\n\n"
	want := "a\r\nb\r\x00 c\r\x00\r\n\r\n"
	var got bytes.Buffer
	buf := make([]byte, 3) // small reads split CR pairs across calls
	r := newNetascii(bytes.NewReader([]byte(in)))
	for {
		n, err := r.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if got.String() != want {
		t.Errorf("netascii(%q) = %q, want %q", in, got.String(), want)
	}
}

// FuzzParseRequest: the request parser never panics, and what it accepts survives a round trip
// through the encoder.
func FuzzParseRequest(f *testing.F) {
	f.Add(rrq(opRRQ, "pxelinux.0", "octet"))
	f.Add(rrq(opRRQ, "/a/b", "netascii", "blksize", "1428", "tsize", "0", "windowsize", "8", "timeout", "1"))
	f.Add(rrq(opWRQ, "f", "octet"))
	f.Add(append(rrq(opRRQ, "f", "octet", "tsize"), 0, 0))
	f.Add([]byte{0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := parseRequest(p)
		if err != nil {
			return
		}
		var kv []string
		for _, o := range r.options {
			kv = append(kv, o.name, o.value)
		}
		again, err := parseRequest(rrq(r.op, r.filename, r.mode, kv...))
		if err != nil {
			t.Fatalf("re-encoded request %+v does not parse: %v", r, err)
		}
		if diff := cmp.Diff(r, again, cmp.AllowUnexported(request{}, option{})); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
		negotiate(r, 1234, Config{}.withDefaults())
	})
}

// FuzzParseReply: the ACK/ERROR parser never panics.
func FuzzParseReply(f *testing.F) {
	f.Add([]byte{0, 4, 0, 1})
	f.Add(appendError(nil, 8, "refused"))
	f.Fuzz(func(t *testing.T, p []byte) {
		parseReply(p)
	})
}
