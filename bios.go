package ironwork

import "time"

// BIOSSetting is one BIOS setting of a node as its bios interface last read it, with what the
// BIOS attribute registry says of it (Ironic's bios_settings): nil registry fields are not
// reported by the BMC.
type BIOSSetting struct {
	Name  string
	Value *string
	// The attribute registry's description (API 1.74).
	AttributeType   *string  // Enumeration, String, Integer, Boolean, Password
	AllowableValues []string // Enumeration only
	LowerBound      *int64
	UpperBound      *int64
	MinLength       *int64
	MaxLength       *int64
	ReadOnly        *bool
	ResetRequired   *bool
	Unique          *bool
	CreatedAt       time.Time
	UpdatedAt       *time.Time
}

// FirmwareComponent is one firmware component of a node as its firmware interface last read
// it (Ironic's firmware_information): its version when first seen, now, and the last version
// an update step flashed.
type FirmwareComponent struct {
	Component          string // bios, bmc, or a NIC's identifier
	InitialVersion     string
	CurrentVersion     string
	LastVersionFlashed *string
	// Vendor, Model and SerialNumber identify the device the firmware runs on (1.114), ""
	// where the BMC does not report them.
	Vendor       string
	Model        string
	SerialNumber string
	CreatedAt    time.Time
	UpdatedAt    *time.Time
}
