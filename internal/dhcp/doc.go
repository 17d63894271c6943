// Package dhcp is Ironwork's network-boot DHCPv4 and DHCPv6 servers and IPv6
// router advertiser for the provisioning network.
//
// It owns the DHCP wire exchange on one interface: in full mode it hands out
// addresses from a range and persists them through [Leases]; in proxy mode it
// sits beside a site DHCP server and only adds PXE boot information
// (proxyDHCP, ports 67 and 4011). In both modes it answers boot requests only
// for MACs that [Nodes] reports as known ports of nodes meant to network-boot
// now, and picks the boot file from the client's architecture (BIOS, UEFI,
// UEFI HTTP) or, for a client that already runs iPXE, the URL of its node's
// iPXE script. [Server6] is the DHCPv6 counterpart on one IPv6 prefix:
// stateful (IA_NA addresses persisted through [Leases6]) or stateless
// (SLAAC; configuration only), with the boot file URL (option 59) for iPXE
// and UEFI HTTP boot. [RouterAdvertiser] sends IPv6 router advertisements,
// with the Managed/Other flags of the DHCPv6 mode, so that iPXE does not
// wait for IPv6 autoconfiguration.
//
// It must not decide what a node boots beyond the boot file, touch the node
// store, or serve TFTP/HTTP: those belong to the conductor and the tftp and
// httpboot packages. It never answers packets that did not arrive on its
// interface.
package dhcp
