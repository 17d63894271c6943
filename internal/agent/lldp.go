package agent

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// LLDP (IEEE 802.1AB) as ironic-python-agent reports it: per interface, the TLVs of the
// first LLDP frame heard, each as [type, "hex of the value"] (its inventory's
// interfaces[].lldp and the lldp_raw plugin data). Ironic's inspection turns them into a
// port's local_link_connection (chassis ID, port ID, system name).

// LLDPEtherType is the EtherType of LLDP frames.
const LLDPEtherType = 0x88cc

// Bounds of what one frame may contribute to an inventory.
const (
	maxLLDPFrame = 1600 // IPA reads at most this many bytes of a frame
	maxLLDPTLVs  = 64
)

// Errors of ParseLLDPFrame.
var (
	ErrNotLLDP       = errors.New("not an LLDP frame")
	ErrLLDPMalformed = errors.New("malformed LLDP frame")
)

// LLDPTLV is one TLV: 7 bits of type, up to 511 bytes of value.
type LLDPTLV struct {
	Type  int
	Value []byte
}

// Pair is IPA's form of the TLV: [type, "hex of the value"].
func (t LLDPTLV) Pair() []any { return []any{t.Type, hex.EncodeToString(t.Value)} }

// MarshalJSON writes IPA's form: [type, "hex"].
func (t LLDPTLV) MarshalJSON() ([]byte, error) { return json.Marshal(t.Pair()) }

// UnmarshalJSON reads IPA's form back.
func (t *LLDPTLV) UnmarshalJSON(b []byte) error {
	var pair []json.RawMessage
	if err := json.Unmarshal(b, &pair); err != nil {
		return fmt.Errorf("LLDP TLV: %w", err)
	}
	if len(pair) != 2 {
		return fmt.Errorf("LLDP TLV: %d elements, want [type, hex value]", len(pair))
	}
	var typ int
	var value string
	if err := json.Unmarshal(pair[0], &typ); err != nil {
		return fmt.Errorf("LLDP TLV type: %w", err)
	}
	if err := json.Unmarshal(pair[1], &value); err != nil {
		return fmt.Errorf("LLDP TLV value: %w", err)
	}
	v, err := hex.DecodeString(value)
	if err != nil {
		return fmt.Errorf("LLDP TLV value: %w", err)
	}
	if typ < 0 || typ > 127 || len(v) > 511 {
		return fmt.Errorf("LLDP TLV: type %d or length %d out of range", typ, len(v))
	}
	t.Type, t.Value = typ, v
	return nil
}

// ParseLLDPFrame reads the TLVs of an Ethernet frame carrying LLDP (an 802.1Q tag before the
// EtherType is allowed). It stops at the End TLV (type 0, not included), at maxLLDPTLVs, or
// at the end of the frame; a TLV whose length runs past the frame is an error.
func ParseLLDPFrame(frame []byte) ([]LLDPTLV, error) {
	if len(frame) > maxLLDPFrame {
		frame = frame[:maxLLDPFrame]
	}
	if len(frame) < 14 {
		return nil, fmt.Errorf("%w: %d bytes, shorter than an Ethernet header", ErrNotLLDP, len(frame))
	}
	etherType := binary.BigEndian.Uint16(frame[12:14])
	body := frame[14:]
	if etherType == 0x8100 && len(body) >= 4 { // 802.1Q tag
		etherType = binary.BigEndian.Uint16(body[2:4])
		body = body[4:]
	}
	if etherType != LLDPEtherType {
		return nil, fmt.Errorf("%w: EtherType %#04x", ErrNotLLDP, etherType)
	}
	var tlvs []LLDPTLV
	for len(body) >= 2 && len(tlvs) < maxLLDPTLVs {
		hdr := binary.BigEndian.Uint16(body[:2])
		typ, n := int(hdr>>9), int(hdr&0x1ff)
		if typ == 0 {
			break
		}
		if len(body) < 2+n {
			return tlvs, fmt.Errorf("%w: TLV type %d claims %d bytes, %d left", ErrLLDPMalformed, typ, n, len(body)-2)
		}
		tlvs = append(tlvs, LLDPTLV{Type: typ, Value: append([]byte(nil), body[2:2+n]...)})
		body = body[2+n:]
	}
	if len(tlvs) == 0 {
		return nil, fmt.Errorf("%w: no TLV", ErrLLDPMalformed)
	}
	return tlvs, nil
}
