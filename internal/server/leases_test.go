package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/ironwork/ironwork/internal/dhcp"
	"github.com/ironwork/ironwork/internal/lockedbuf"
	"github.com/ironwork/ironwork/internal/sqlstore"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

// everyoneNetBoots knows every MAC as a node that boots from the network.
type everyoneNetBoots struct{}

func (everyoneNetBoots) Lookup(context.Context, net.HardwareAddr) (dhcp.Client, error) {
	return dhcp.Client{Known: true, NetBoot: true}, nil
}

// rack is a subnet behind a relay whose address on it is gateway.
type rack struct {
	network *net.IPNet
	gateway net.IP
	first   net.IP
	last    net.IP
}

func testRack(n int, size int) rack {
	_, network, _ := net.ParseCIDR(fmt.Sprintf("10.%d.0.0/24", 100+n))
	return rack{network: network, gateway: net.IPv4(10, byte(100+n), 0, 1).To4(),
		first: net.IPv4(10, byte(100+n), 0, 10).To4(), last: net.IPv4(10, byte(100+n), 0, byte(10+size-1)).To4()}
}

// dhcpPeer is one DHCP server of a two-conductor deployment, with its own connections to
// the shared database and its own log.
type dhcpPeer struct {
	srv *dhcp.Server
	ip  net.IP
	log *lockedbuf.Buffer
}

// TestTwoConductorsNeverLeaseOneAddressTwice runs two DHCP servers, each with its own
// connections to one PostgreSQL database, as two conductors would: the first serves racks 1
// and 2, the second racks 2 and 3, so rack 2 is served by both (every relayed packet reaches
// both, as a relay with two helper addresses sends it) and racks 1 and 3 by one each. The
// same machines sit in racks 1 and 3 (a MAC holds a lease on each subnet). Every client does
// DISCOVER/REQUEST at once, choosing the first offer; no address is acknowledged to two
// MACs, each lies in its rack's range, and the database holds what was acknowledged.
func TestTwoConductorsNeverLeaseOneAddressTwice(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dsn := sqlstoretest.PostgresDSN(t)
	racks := []rack{testRack(1, 40), testRack(2, 48), testRack(3, 40)}
	subnetOf := func(r rack) dhcp.Subnet {
		return dhcp.Subnet{Network: r.network, RangeStart: r.first, RangeEnd: r.last}
	}
	var conductors []*dhcpPeer
	for i, served := range [][]rack{{racks[0], racks[1]}, {racks[1], racks[2]}} {
		store, err := sqlstore.Open(ctx, dsn, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		c := &dhcpPeer{ip: net.IPv4(192, 0, 2, byte(1+i)).To4(), log: &lockedbuf.Buffer{}}
		cfg := dhcp.Config{
			Mode: dhcp.ModeFull, Interface: fmt.Sprintf("cond%d", i), ServerIP: c.ip, Netmask: net.CIDRMask(24, 32),
			RangeStart: net.IPv4(192, 0, 2, byte(100+10*i)).To4(), RangeEnd: net.IPv4(192, 0, 2, byte(109+10*i)).To4(),
			HTTPBootURL: "http://" + c.ip.String() + ":8080/", LeaseTime: time.Hour, OfferHold: time.Minute,
		}
		for _, r := range served {
			cfg.Subnets = append(cfg.Subnets, subnetOf(r))
		}
		log := slog.New(slog.NewTextHandler(c.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
		if c.srv, err = dhcp.New(cfg, everyoneNetBoots{}, storeLeases{store}, log); err != nil {
			t.Fatal(err)
		}
		conductors = append(conductors, c)
	}
	servers := func(r rack) []*dhcpPeer {
		switch {
		case r.network.IP.Equal(racks[0].network.IP):
			return conductors[:1]
		case r.network.IP.Equal(racks[2].network.IP):
			return conductors[1:]
		}
		return conductors
	}

	type client struct {
		rack rack
		mac  net.HardwareAddr
	}
	var clients []client
	for i := 0; i < 36; i++ { // the same machines in racks 1 and 3
		mac := net.HardwareAddr{0x52, 0x54, 0x00, 0x0c, 0x01, byte(i)}
		clients = append(clients, client{racks[0], mac}, client{racks[2], mac})
	}
	for i := 0; i < 44; i++ {
		clients = append(clients, client{racks[1], net.HardwareAddr{0x52, 0x54, 0x00, 0x0c, 0x02, byte(i)}})
	}

	// dora runs one client's exchange against the servers of its rack, retrying (bounded)
	// when the chosen server NAKs because the other one took the address.
	dora := func(c client) (net.IP, *dhcpPeer, error) {
		srvs := servers(c.rack)
		for attempt := 0; attempt < 10; attempt++ {
			d, err := dhcpv4.NewDiscovery(c.mac)
			if err != nil {
				return nil, nil, err
			}
			d.GatewayIPAddr, d.HopCount = c.rack.gateway, 1
			// The relay's copies reach the servers one after the other, in an order that
			// differs from client to client, so that each server is busy with another
			// client when it sees this one.
			offers := make([]*dhcpv4.DHCPv4, len(srvs))
			errs := make([]error, len(srvs))
			for k := range srvs {
				i := (k + int(c.mac[5])) % len(srvs)
				offers[i], errs[i] = srvs[i].srv.Handle(ctx, d, dhcp.PortDHCP)
			}
			var chosen *dhcpPeer
			var offer *dhcpv4.DHCPv4
			for i, o := range offers {
				if errs[i] != nil {
					return nil, nil, fmt.Errorf("offer from %v: %w", srvs[i].ip, errs[i])
				}
				if o != nil && chosen == nil {
					chosen, offer = srvs[i], o
				}
			}
			if chosen == nil {
				continue
			}
			r, err := dhcpv4.NewRequestFromOffer(offer)
			if err != nil {
				return nil, nil, err
			}
			r.GatewayIPAddr, r.HopCount = c.rack.gateway, 1
			var ack *dhcpv4.DHCPv4
			for _, s := range srvs {
				a, err := s.srv.Handle(ctx, r, dhcp.PortDHCP)
				if err != nil {
					return nil, nil, fmt.Errorf("request to %v: %w", s.ip, err)
				}
				if a != nil && s != chosen {
					return nil, nil, fmt.Errorf("%v answered a request for %v", s.ip, chosen.ip)
				}
				if a != nil {
					ack = a
				}
			}
			if ack != nil && ack.MessageType() == dhcpv4.MessageTypeAck {
				return ack.YourIPAddr.To4(), chosen, nil
			}
		}
		return nil, nil, fmt.Errorf("%v in %v: no lease after 10 attempts", c.mac, c.rack.network)
	}

	type result struct {
		c   client
		ip  net.IP
		by  *dhcpPeer
		err error
	}
	results := make([]result, len(clients))
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ip, by, err := dora(c)
			results[i] = result{c, ip, by, err}
		}()
	}
	wg.Wait()
	t.Logf("%d clients leased in %v", len(clients), time.Since(start))

	holder := map[string]string{}
	store, err := sqlstore.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, r := range results {
		if r.err != nil {
			t.Error(r.err)
			continue
		}
		who := r.c.mac.String() + " in " + r.c.rack.network.String()
		if h, dup := holder[r.ip.String()]; dup {
			t.Errorf("%v acknowledged to %s and to %s", r.ip, h, who)
		}
		holder[r.ip.String()] = who
		if v := ipU32(r.ip); v < ipU32(r.c.rack.first) || v > ipU32(r.c.rack.last) {
			t.Errorf("%s got %v, outside its range %v-%v", who, r.ip, r.c.rack.first, r.c.rack.last)
		}
		l, ok, err := store.Lease(ctx, r.c.rack.network.String(), r.c.mac.String())
		if err != nil || !ok || l.IP != r.ip.String() {
			t.Errorf("%s was acknowledged %v by %v; the database has %+v %v %v", who, r.ip, r.by.ip, l, ok, err)
		}
	}
	taken := 0
	for _, c := range conductors {
		taken += strings.Count(c.log.String(), "address taken by another server")
	}
	t.Logf("offers that picked again because the other conductor had taken the address: %d; NAKs for the same reason: %d",
		taken, strings.Count(conductors[0].log.String(), "NAK: address taken by another server")+strings.Count(conductors[1].log.String(), "NAK: address taken by another server"))
}

func ipU32(ip net.IP) uint32 {
	ip4 := ip.To4()
	return uint32(ip4[0])<<24 | uint32(ip4[1])<<16 | uint32(ip4[2])<<8 | uint32(ip4[3])
}

// staleLeases is a conductor's view of the lease store that has not yet seen one address
// leased: it stands for a read made just before the other conductor's commit.
type staleLeases struct {
	storeLeases
	hidden net.IP
}

func (s staleLeases) ByIP(ctx context.Context, ip net.IP) (dhcp.Lease, bool, error) {
	if ip.Equal(s.hidden) {
		return dhcp.Lease{}, false, nil
	}
	return s.storeLeases.ByIP(ctx, ip)
}

// TestOfferPicksAgainWhenAnotherConductorTookTheAddress makes the race of two conductors
// certain: the second chooses an address the first has just leased (its read came first),
// the database refuses the second holder, and the second conductor offers the next address.
func TestOfferPicksAgainWhenAnotherConductorTookTheAddress(t *testing.T) {
	ctx := context.Background()
	dsn := sqlstoretest.PostgresDSN(t)
	r := testRack(4, 4)
	newPeer := func(i int, wrap func(storeLeases) dhcp.Leases) (*dhcp.Server, *lockedbuf.Buffer) {
		store, err := sqlstore.Open(ctx, dsn, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		ip := net.IPv4(192, 0, 2, byte(1+i)).To4()
		cfg := dhcp.Config{
			Mode: dhcp.ModeFull, Interface: "cond", ServerIP: ip, Netmask: net.CIDRMask(24, 32),
			RangeStart: net.IPv4(192, 0, 2, 100).To4(), RangeEnd: net.IPv4(192, 0, 2, 109).To4(),
			HTTPBootURL: "http://" + ip.String() + ":8080/", LeaseTime: time.Hour, OfferHold: time.Minute,
			Subnets: []dhcp.Subnet{{Network: r.network, RangeStart: r.first, RangeEnd: r.last}},
		}
		logs := &lockedbuf.Buffer{}
		srv, err := dhcp.New(cfg, everyoneNetBoots{}, wrap(storeLeases{store}),
			slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
		if err != nil {
			t.Fatal(err)
		}
		return srv, logs
	}
	first, _ := newPeer(0, func(s storeLeases) dhcp.Leases { return s })
	second, logs := newPeer(1, func(s storeLeases) dhcp.Leases { return staleLeases{s, r.first} })
	offer := func(srv *dhcp.Server, mac net.HardwareAddr) net.IP {
		t.Helper()
		d, err := dhcpv4.NewDiscovery(mac)
		if err != nil {
			t.Fatal(err)
		}
		d.GatewayIPAddr, d.HopCount = r.gateway, 1
		o, err := srv.Handle(ctx, d, dhcp.PortDHCP)
		if err != nil || o == nil {
			t.Fatalf("offer to %v: %v %v", mac, o, err)
		}
		return o.YourIPAddr.To4()
	}
	hidden := offer(first, net.HardwareAddr{0x52, 0x54, 0x00, 0x0c, 0x04, 0x01})
	if !hidden.Equal(r.first) {
		t.Fatalf("first conductor offered %v, want the range's first address %v", hidden, r.first)
	}
	got := offer(second, net.HardwareAddr{0x52, 0x54, 0x00, 0x0c, 0x04, 0x02})
	if got.Equal(hidden) {
		t.Fatalf("both conductors offered %v", got)
	}
	if n := strings.Count(logs.String(), "address taken by another server"); n != 1 {
		t.Errorf("second conductor picked again %d times, want 1", n)
	}
}
