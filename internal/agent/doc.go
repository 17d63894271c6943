// Package agent is what the deploy agent (ironwork-agent) does to a node's
// disks: it writes the user's OS image onto the root device (raw, gzip/zstd/xz
// compressed raw, or qcow2, streamed over HTTP and verified against the
// image checksum), picks that root device from Ironic root device hints,
// erases disk metadata or whole devices for cleaning, adds the config drive
// partition and reads partition UUIDs back for the conductor. It also reads the machine's
// hardware inventory in IPA's shape (/proc and /sys, LLDP frames heard on the NICs, the BMC's
// address through the kernel's IPMI device), bounded in size.
//
// The package owns the bytes on the disk and the inventory and nothing else: it serves no HTTP,
// keeps no state between calls, never talks to the Ironic API and does not
// decide which provision state follows a result (the agent's API layer and the
// conductor do). Errors are worded for a node's last_error. The block device
// paths use Linux ioctls (BLKZEROOUT, BLKDISCARD, BLKSSZGET); on other systems
// those report errors.ErrUnsupported and the portable fallbacks (writing
// zeros) are used.
package agent
