package tftp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Opcodes (RFC 1350, RFC 2347).
const (
	opRRQ   uint16 = 1
	opWRQ   uint16 = 2
	opDATA  uint16 = 3
	opACK   uint16 = 4
	opERROR uint16 = 5
	opOACK  uint16 = 6
)

// Error codes (RFC 1350, RFC 2347).
const (
	errNotDefined     uint16 = 0
	errFileNotFound   uint16 = 1
	errAccess         uint16 = 2
	errIllegalOp      uint16 = 4
	errUnknownTID     uint16 = 5
	errOptionsRefused uint16 = 8
)

// Option limits (RFC 2348, RFC 2349, RFC 7440).
const (
	defaultBlockSize = 512
	minBlockSize     = 8
	maxBlockSize     = 65464
	minTimeoutSec    = 1
	maxTimeoutSec    = 255
	maxWindowSize    = 65535
)

// Transfer modes.
const (
	modeOctet    = "octet"
	modeNetascii = "netascii"
)

var errMalformed = errors.New("malformed packet")

// request is a decoded RRQ or WRQ. Options holds every option the client sent, names in lower
// case, in the order sent; a repeated name keeps its first value.
type request struct {
	op       uint16
	filename string
	mode     string // lower case
	options  []option
}

type option struct {
	name, value string
}

// parseRequest decodes an RRQ or WRQ: opcode, filename, 0, mode, 0, then name/value pairs each
// followed by 0. A field without its terminating NUL is an error.
func parseRequest(p []byte) (request, error) {
	if len(p) < 2 {
		return request{}, fmt.Errorf("request of %d bytes: %w", len(p), errMalformed)
	}
	var r request
	r.op = binary.BigEndian.Uint16(p)
	if r.op != opRRQ && r.op != opWRQ {
		return request{}, fmt.Errorf("opcode %d is not a request: %w", r.op, errMalformed)
	}
	fields, err := splitStrings(p[2:])
	if err != nil {
		return request{}, err
	}
	if len(fields) < 2 {
		return request{}, fmt.Errorf("request without filename and mode: %w", errMalformed)
	}
	// Some PXE ROMs pad the request with NULs: drop empty trailing fields, then a lone name
	// gets an empty (invalid, so ignored) value.
	for len(fields) > 2 && fields[len(fields)-1] == "" {
		fields = fields[:len(fields)-1]
	}
	if len(fields)%2 != 0 {
		fields = append(fields, "")
	}
	r.filename = fields[0]
	r.mode = strings.ToLower(fields[1])
	if r.filename == "" {
		return request{}, fmt.Errorf("empty filename: %w", errMalformed)
	}
	for i := 2; i < len(fields); i += 2 {
		name := strings.ToLower(fields[i])
		if name == "" || r.hasOption(name) {
			continue
		}
		r.options = append(r.options, option{name: name, value: fields[i+1]})
	}
	return r, nil
}

// splitStrings splits a sequence of NUL-terminated strings. Bytes after the last NUL are an
// error (a truncated field).
func splitStrings(b []byte) ([]string, error) {
	var out []string
	for len(b) > 0 {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			return nil, fmt.Errorf("field not terminated by NUL: %w", errMalformed)
		}
		out = append(out, string(b[:i]))
		b = b[i+1:]
	}
	return out, nil
}

// option returns the value of the named option ("" when absent).
func (r request) option(name string) string {
	for _, o := range r.options {
		if o.name == name {
			return o.value
		}
	}
	return ""
}

// hasOption reports whether the client sent the named option.
func (r request) hasOption(name string) bool {
	for _, o := range r.options {
		if o.name == name {
			return true
		}
	}
	return false
}

// appendData appends a DATA packet header; the caller appends the payload.
func appendData(b []byte, block uint16) []byte {
	b = binary.BigEndian.AppendUint16(b, opDATA)
	return binary.BigEndian.AppendUint16(b, block)
}

// appendError appends an ERROR packet.
func appendError(b []byte, code uint16, msg string) []byte {
	b = binary.BigEndian.AppendUint16(b, opERROR)
	b = binary.BigEndian.AppendUint16(b, code)
	b = append(b, msg...)
	return append(b, 0)
}

// appendOACK appends an OACK packet with the options in order.
func appendOACK(b []byte, opts []option) []byte {
	b = binary.BigEndian.AppendUint16(b, opOACK)
	for _, o := range opts {
		b = append(b, o.name...)
		b = append(b, 0)
		b = append(b, o.value...)
		b = append(b, 0)
	}
	return b
}

// reply is a decoded packet a client sends during a transfer: an ACK or an ERROR.
type reply struct {
	op    uint16
	block uint16 // ACK
	code  uint16 // ERROR
	msg   string // ERROR
}

// parseReply decodes an ACK or ERROR packet.
func parseReply(p []byte) (reply, error) {
	if len(p) < 4 {
		return reply{}, fmt.Errorf("packet of %d bytes: %w", len(p), errMalformed)
	}
	r := reply{op: binary.BigEndian.Uint16(p)}
	switch r.op {
	case opACK:
		r.block = binary.BigEndian.Uint16(p[2:])
	case opERROR:
		r.code = binary.BigEndian.Uint16(p[2:])
		msg := p[4:]
		if i := bytes.IndexByte(msg, 0); i >= 0 {
			msg = msg[:i]
		}
		r.msg = string(msg)
	default:
		return reply{}, fmt.Errorf("opcode %d during a transfer: %w", r.op, errMalformed)
	}
	return r, nil
}
