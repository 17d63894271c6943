package initsys

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/insomniacslk/dhcp/iana"
)

// The DHCP client's messages are built here rather than by dhcpv4.New and its callers,
// because those draw every transaction id from the kernel's CRNG and wait (up to two
// minutes, then fail with "could not get random number") until it is initialised: on a
// machine without RDRAND or virtio-rng that is long after the ramdisk needs its lease. A
// transaction id only has to differ from other clients' on the segment, not be secret.

// xidSource gives transaction ids from a math/rand/v2 generator seeded from the clock and the
// NIC's MAC, so two machines booted at the same instant still differ. It reads no kernel
// randomness. One goroutine owns it.
type xidSource struct{ r *rand.Rand }

func newXIDSource(mac net.HardwareAddr, now time.Time) *xidSource {
	var m [8]byte
	copy(m[2:], mac)
	return &xidSource{r: rand.New(rand.NewPCG(uint64(now.UnixNano()), binary.BigEndian.Uint64(m[:])))}
}

func (s *xidSource) next() dhcpv4.TransactionID {
	var x dhcpv4.TransactionID
	binary.BigEndian.PutUint32(x[:], s.r.Uint32())
	return x
}

// requested are the options the client asks for.
var requested = []dhcpv4.OptionCode{dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainName, dhcpv4.OptionDomainNameServer}

// newMessage is a BOOTREQUEST with transaction id xid, then mods applied.
func newMessage(xid dhcpv4.TransactionID, mac net.HardwareAddr, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	d := &dhcpv4.DHCPv4{
		OpCode: dhcpv4.OpcodeBootRequest, HWType: iana.HWTypeEthernet, ClientHWAddr: mac, TransactionID: xid,
		ClientIPAddr: net.IPv4zero, YourIPAddr: net.IPv4zero, ServerIPAddr: net.IPv4zero, GatewayIPAddr: net.IPv4zero,
		Options: make(dhcpv4.Options),
	}
	mods = append([]dhcpv4.Modifier{
		dhcpv4.WithRequestedOptions(requested...),
		dhcpv4.WithOption(dhcpv4.OptMaxMessageSize(nclient4.MaxMessageSize)),
	}, mods...)
	for _, m := range mods {
		m(d)
	}
	return d
}

func discoverMessage(xid dhcpv4.TransactionID, mac net.HardwareAddr) *dhcpv4.DHCPv4 {
	return newMessage(xid, mac, dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover))
}

// requestMessage selects offer (RFC 2131 4.3.2, SELECTING: the offer's transaction id).
func requestMessage(offer *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	return newMessage(offer.TransactionID, offer.ClientHWAddr,
		dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(offer.YourIPAddr)),
		dhcpv4.WithOptionCopied(offer, dhcpv4.OptionServerIdentifier))
}

// extendMessage asks to extend the lease of ack: RENEWING (to the server that gave it) or
// REBINDING (to any server); both carry the address in ciaddr and no server identifier.
func extendMessage(xid dhcpv4.TransactionID, ack *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	return newMessage(xid, ack.ClientHWAddr,
		dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithClientIP(ack.YourIPAddr))
}

// dhcpClient runs the DHCP exchanges of one NIC with its own transaction ids.
type dhcpClient struct {
	c    *nclient4.Client
	mac  net.HardwareAddr
	xids *xidSource
}

func newDHCPClient(nic net.Interface, xids *xidSource) (*dhcpClient, error) {
	c, err := nclient4.New(nic.Name, nclient4.WithTimeout(4*time.Second), nclient4.WithRetry(3))
	if err != nil {
		return nil, fmt.Errorf("dhcp client on %s: %w", nic.Name, err)
	}
	return &dhcpClient{c: c, mac: nic.HardwareAddr, xids: xids}, nil
}

func (d *dhcpClient) Close() error { return d.c.Close() }

// obtain runs DISCOVER, OFFER, REQUEST, ACK.
func (d *dhcpClient) obtain(ctx context.Context) (*nclient4.Lease, error) {
	offer, err := d.c.SendAndRead(ctx, d.c.RemoteAddr(), discoverMessage(d.xids.next(), d.mac), nclient4.IsMessageType(dhcpv4.MessageTypeOffer))
	if err != nil {
		return nil, fmt.Errorf("discover: %w", err)
	}
	return d.request(ctx, d.c, offer, d.c.RemoteAddr(), requestMessage(offer))
}

// extend renews the lease (RENEWING: unicast from the leased address to the server that gave
// it, through the kernel's UDP stack) or rebinds it (REBINDING: broadcast to any server).
func (d *dhcpClient) extend(ctx context.Context, nic string, lease *nclient4.Lease, rebind bool) (*nclient4.Lease, error) {
	req := extendMessage(d.xids.next(), lease.ACK)
	if rebind {
		return d.request(ctx, d.c, lease.Offer, d.c.RemoteAddr(), req)
	}
	u, err := nclient4.New(nic, nclient4.WithHWAddr(d.mac), nclient4.WithTimeout(4*time.Second), nclient4.WithRetry(3),
		nclient4.WithUnicast(&net.UDPAddr{IP: lease.ACK.YourIPAddr, Port: nclient4.ClientPort}))
	if err != nil {
		return nil, fmt.Errorf("renew: %w", err)
	}
	defer u.Close()
	return d.request(ctx, u, lease.Offer, &net.UDPAddr{IP: lease.ACK.ServerIdentifier(), Port: nclient4.ServerPort}, req)
}

func (d *dhcpClient) request(ctx context.Context, c *nclient4.Client, offer *dhcpv4.DHCPv4, dest *net.UDPAddr, req *dhcpv4.DHCPv4) (*nclient4.Lease, error) {
	resp, err := c.SendAndRead(ctx, dest, req, nclient4.IsMessageType(dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak))
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	if resp.MessageType() == dhcpv4.MessageTypeNak {
		return nil, &nclient4.ErrNak{Offer: offer, Nak: resp}
	}
	return &nclient4.Lease{Offer: offer, ACK: resp, CreationTime: time.Now()}, nil
}

// leaseTimes are a lease's renewal (T1), rebinding (T2) and expiry times, from when it was
// granted. Forever means the lease never needs renewing.
type leaseTimes struct {
	T1, T2, Expiry time.Duration
	Forever        bool
}

// timesOf reads the times of ack: the lease time (option 51), T1 (58) and T2 (59), with
// RFC 2131's defaults of 0.5 and 0.875 of the lease time, and T1 <= T2 <= lease time.
func timesOf(ack *dhcpv4.DHCPv4) leaseTimes {
	seconds := func(code dhcpv4.OptionCode) (uint32, bool) {
		b := ack.Options.Get(code)
		if len(b) != 4 {
			return 0, false
		}
		return binary.BigEndian.Uint32(b), true
	}
	lease, ok := seconds(dhcpv4.OptionIPAddressLeaseTime)
	if ok && lease == 0xffffffff {
		return leaseTimes{Forever: true}
	}
	if !ok || lease == 0 {
		lease = 3600 // no lease time: renew within the hour
	}
	lt := leaseTimes{Expiry: time.Duration(lease) * time.Second}
	lt.T1, lt.T2 = lt.Expiry/2, lt.Expiry*7/8
	if s, ok := seconds(dhcpv4.OptionRebindingTimeValue); ok && time.Duration(s)*time.Second < lt.Expiry {
		lt.T2 = time.Duration(s) * time.Second
	}
	if s, ok := seconds(dhcpv4.OptionRenewTimeValue); ok && time.Duration(s)*time.Second < lt.T2 {
		lt.T1 = time.Duration(s) * time.Second
	} else if lt.T1 > lt.T2 {
		lt.T1 = lt.T2
	}
	return lt
}

// leasePhase is where a lease is in its life.
type leasePhase int

const (
	phaseBound     leasePhase = iota // wait for T1
	phaseRenewing                    // ask the server that gave it
	phaseRebinding                   // ask any server
	phaseExpired                     // the address must go: start again with DISCOVER
)

func (p leasePhase) String() string {
	return [...]string{"bound", "renewing", "rebinding", "expired"}[p]
}

// schedule says, for a lease granted at got with times lt, which phase it is in at now and
// when the next message is due: T1 while bound; while renewing (rebinding), half of the time
// left until T2 (expiry), at least minRetry, and never past T2 (expiry), as RFC 2131 4.4.5
// says (it names 60 s for minRetry).
func schedule(now, got time.Time, lt leaseTimes, minRetry time.Duration) (leasePhase, time.Time) {
	if lt.Forever {
		return phaseBound, time.Time{}
	}
	t1, t2, exp := got.Add(lt.T1), got.Add(lt.T2), got.Add(lt.Expiry)
	retry := func(end time.Time) time.Time {
		return minTime(now.Add(max(end.Sub(now)/2, minRetry)), end)
	}
	switch {
	case now.Before(t1):
		return phaseBound, t1
	case now.Before(t2):
		return phaseRenewing, retry(t2)
	case now.Before(exp):
		return phaseRebinding, retry(exp)
	}
	return phaseExpired, now
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
