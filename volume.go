package ironwork

import "time"

// VolumeConnector is how a node connects to remote storage (API 1.32): an initiator
// identity such as an iSCSI IQN or a Fibre Channel WWPN. Type and ConnectorID are unique
// together across all nodes, as in Ironic.
type VolumeConnector struct {
	ID          int64
	UUID        string
	NodeID      int64
	NodeUUID    string
	Type        string
	ConnectorID string
	Extra       JSONObject
	CreatedAt   time.Time
	UpdatedAt   *time.Time
}

// VolumeTarget is a remote volume a node may boot from or attach (API 1.32). BootIndex is
// unique per node; index 0 is the boot volume.
type VolumeTarget struct {
	ID         int64
	UUID       string
	NodeID     int64
	NodeUUID   string
	VolumeType string
	Properties JSONObject
	BootIndex  int
	VolumeID   string
	Extra      JSONObject
	CreatedAt  time.Time
	UpdatedAt  *time.Time
}
