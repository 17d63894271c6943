package agent

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"

	"github.com/ironwork/ironwork/internal/netns"
)

// lldpFrame builds an LLDP frame as a switch sends it: chassis ID (MAC), port ID
// (interface name), TTL, system name, then End.
func lldpFrame(src net.HardwareAddr, port, sysName string, vlan bool) []byte {
	f := append([]byte{0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e}, src...)
	if vlan {
		f = append(f, 0x81, 0x00, 0x00, 0x64)
	}
	f = append(f, 0x88, 0xcc)
	tlv := func(typ int, v []byte) {
		f = append(f, byte(typ<<1|len(v)>>8), byte(len(v)))
		f = append(f, v...)
	}
	tlv(1, append([]byte{4}, src...))        // chassis ID, subtype MAC
	tlv(2, append([]byte{5}, port...))       // port ID, subtype interface name
	tlv(3, []byte{0, 120})                   // TTL
	tlv(5, []byte(sysName))                  // system name
	tlv(0, nil)                              // End
	return append(f, 0xde, 0xad, 0xbe, 0xef) // padding after End is ignored
}

func TestParseLLDPFrame(t *testing.T) {
	src := net.HardwareAddr{0x00, 0x1c, 0x73, 0x11, 0x22, 0x33}
	want := []LLDPTLV{
		{1, append([]byte{4}, src...)},
		{2, []byte("\x05Ethernet1/7")},
		{3, []byte{0, 120}},
		{5, []byte("leaf-3")},
	}
	for _, vlan := range []bool{false, true} {
		got, err := ParseLLDPFrame(lldpFrame(src, "Ethernet1/7", "leaf-3", vlan))
		if err != nil {
			t.Fatalf("vlan %v: %v", vlan, err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("vlan %v (-want +got):\n%s", vlan, d)
		}
	}
	// IPA's JSON: [type, "hex"], and back.
	b, err := json.Marshal(want[:2])
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `[[1,"04001c73112233"],[2,"`+hex.EncodeToString([]byte("\x05Ethernet1/7"))+`"]]` {
		t.Errorf("JSON %s", b)
	}
	var back []LLDPTLV
	if err := json.Unmarshal(b, &back); err != nil || !cmp.Equal(back, want[:2]) {
		t.Errorf("read back %v: %v", back, err)
	}

	bad := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"short", []byte{1, 2, 3}, ErrNotLLDP},
		{"IPv4", append(make([]byte, 12), 0x08, 0x00, 0, 0), ErrNotLLDP},
		{"truncated TLV", append(append(make([]byte, 12), 0x88, 0xcc), 0x02, 0x10, 'x'), ErrLLDPMalformed},
		{"End first", append(append(make([]byte, 12), 0x88, 0xcc), 0, 0), ErrLLDPMalformed},
	}
	for _, c := range bad {
		if _, err := ParseLLDPFrame(c.frame); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	for _, s := range []string{`[1]`, `[1,"zz"]`, `[200,""]`, `{"a":1}`} {
		var tlv LLDPTLV
		if err := json.Unmarshal([]byte(s), &tlv); err == nil {
			t.Errorf("%s read as %v", s, tlv)
		}
	}
}

// FuzzLLDPFrame: any frame parses without panicking into at most maxLLDPTLVs TLVs whose
// values fit the 9-bit length and whose JSON reads back the same.
func FuzzLLDPFrame(f *testing.F) {
	f.Add(lldpFrame(net.HardwareAddr{2, 0, 0, 0, 0, 1}, "swp1", "sw", false))
	f.Add(lldpFrame(net.HardwareAddr{2, 0, 0, 0, 0, 1}, "swp1", "sw", true))
	f.Add(append(make([]byte, 12), 0x88, 0xcc, 0xff, 0xff))
	f.Fuzz(func(t *testing.T, frame []byte) {
		tlvs, err := ParseLLDPFrame(frame)
		if len(tlvs) > maxLLDPTLVs {
			t.Fatalf("%d TLVs", len(tlvs))
		}
		if err == nil && len(tlvs) == 0 {
			t.Fatal("no error and no TLV")
		}
		for _, tlv := range tlvs {
			if tlv.Type <= 0 || tlv.Type > 127 || len(tlv.Value) > 511 {
				t.Fatalf("TLV %d with %d bytes", tlv.Type, len(tlv.Value))
			}
		}
		b, err := json.Marshal(tlvs)
		if err != nil {
			t.Fatal(err)
		}
		var back []LLDPTLV
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if len(tlvs) > 0 && !cmp.Equal(back, tlvs, cmpopts.EquateEmpty()) { // an empty value reads back as []byte{}
			t.Fatalf("read back %v, want %v", back, tlvs)
		}
	})
}

// TestListenLLDPOnTheWire: in a namespace of its own, a veth pair; a "switch" sends LLDP
// frames on one end every 100 ms, ListenLLDP hears them on the other, and an interface
// where nothing is sent is reported as silent after the timeout.
func TestListenLLDPOnTheWire(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace and packet sockets")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
	ns := fmt.Sprintf("iwlldp-%d", os.Getpid()%100000)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	run("netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run("-n", ns, "link", "add", "sw0", "type", "veth", "peer", "name", "eth0")
	run("-n", ns, "link", "add", "quiet0", "type", "veth", "peer", "name", "eth1")
	for _, l := range []string{"sw0", "eth0", "quiet0", "eth1"} {
		run("-n", ns, "link", "set", l, "up")
	}
	src := net.HardwareAddr{0x00, 0x1c, 0x73, 0xaa, 0xbb, 0xcc}
	frame := lldpFrame(src, "Ethernet12", "tor-1", false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sent := make(chan int, 1)
	go func() {
		n := 0
		err := netns.Do(ns, func() error {
			ifc, err := net.InterfaceByName("sw0")
			if err != nil {
				return err
			}
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(LLDPEtherType)))
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			to := &unix.SockaddrLinklayer{Ifindex: ifc.Index, Protocol: htons(LLDPEtherType), Halen: 6, Addr: [8]byte{0x01, 0x80, 0xc2, 0, 0, 0x0e}}
			for ; n < 50 && ctx.Err() == nil; n++ { // ≤ 5 s
				if err := unix.Sendto(fd, frame, 0, to); err != nil {
					return err
				}
				time.Sleep(100 * time.Millisecond)
			}
			return nil
		})
		if err != nil {
			t.Errorf("send LLDP: %v", err)
		}
		sent <- n
	}()
	var heard map[string][]LLDPTLV
	start := time.Now()
	err := netns.Do(ns, func() error {
		var err error
		heard, err = ListenLLDP(ctx, []string{"eth0", "eth1"}, 3*time.Second)
		return err
	})
	t.Logf("ListenLLDP on two interfaces (one silent, 3 s timeout): %.2f s", time.Since(start).Seconds())
	cancel()
	t.Logf("frames sent: %d", <-sent)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ParseLLDPFrame(frame)
	if d := cmp.Diff(map[string][]LLDPTLV{"eth0": want}, heard); d != "" {
		t.Errorf("heard (-want +got):\n%s", d)
	}
	if _, err := ListenLLDP(context.Background(), []string{"no-such-nic"}, time.Second); err == nil {
		t.Error("no error for an interface that does not exist")
	}
}
