// Package lab runs a throw-away bare-metal lab on one machine: a provisioning network inside a
// network namespace (a bridge and one tap per virtual machine, addressed from a private range
// that exists only inside it), an `ironwork serve` process whose DHCP, TFTP and HTTP boot
// services answer on that network, virtual BMCs (`ironwork vbmc`, IPMI or Redfish, or
// OpenIPMI's ipmi_sim) that start and stop QEMU virtual machines of a chosen shape (vCPUs,
// memory, disks, NICs), and the nodes enrolled in the server with their BMCs, deploy ramdisk
// and ports, or, for discovery, machines left unenrolled and powered on to network-boot.
//
// Up records every resource in the lab directory's state file before it creates it, so Down
// removes everything again, also after Up failed half-way or its process was killed. Cycle
// drives nodes through manage, provide, deploy and undeploy and measures each phase; it is
// what `ironwork lab demo` shows and what the package's end-to-end test asserts.
package lab
