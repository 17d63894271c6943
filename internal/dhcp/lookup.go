package dhcp

import (
	"context"
	"net"
)

// Nodes tells the server what it knows of a MAC address. The conductor
// implements it from its ports and nodes.
type Nodes interface {
	// Lookup returns what is known of mac. An unknown MAC is not an
	// error: it returns a Client with Known false.
	Lookup(ctx context.Context, mac net.HardwareAddr) (Client, error)
}

// Client is what Nodes knows of one MAC.
type Client struct {
	// Known: the MAC is a pxe_enabled port of an enrolled node.
	Known bool
	// NetBoot: the node is meant to boot from the network now. A known
	// client that should not net-boot still gets an address in full mode,
	// but no boot file.
	NetBoot bool
	// Node is the node's UUID (for logs and the script URL).
	Node string
	// StaticIP, if set, is the port's fixed address: always given to this
	// MAC (full mode) and never to another one.
	StaticIP net.IP
	// TenantVIF is the VIF attached to the port (or its portgroup), if any: a
	// deployed instance DHCPs on it and gets its address, sticky per MAC or
	// StaticIP, with no boot file unless NetBoot says so.
	TenantVIF string
}

// StaticOwners is an optional interface of Nodes: when Nodes implements it,
// the allocator never offers an address that is another port's StaticIP,
// even before that port has asked for it. Without it, a static address
// inside the dynamic range may be handed out until its owner claims it (the
// other client is then NAKed at its next renewal); keep static addresses
// outside the range to avoid that.
type StaticOwners interface {
	// StaticOwner returns the MAC whose StaticIP is ip, if any.
	StaticOwner(ctx context.Context, ip net.IP) (net.HardwareAddr, bool, error)
}
