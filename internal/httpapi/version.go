package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/ironwork/ironwork"
)

// The microversions this server speaks: 1.MinMinor to 1.MaxMinor.
const (
	MinMinor = 1
	MaxMinor = 115 // PendingMax() of the version table (versions.go); a test keeps them equal
)

// Microversion feature gates used by more than one handler.
const (
	vFields                = 8
	vProvisionFilter       = 9
	vDriverFilter          = 16
	vResourceClass         = 21
	vPortgroups            = 23
	vPortgroupSubs         = 24
	vRemoveChassis         = 25
	vPortgroupMode         = 26
	vVIFs                  = 28
	vDynamicDrivers        = 30
	vTraits                = 37
	vFault                 = 42
	vDetail                = 43
	vResetInterfaces       = 45
	vConductorGroup        = 46
	vConductors            = 49
	vOwner                 = 50
	vDescription           = 51
	vAllocations           = 52
	vLessee                = 65
	vDriverFields          = 77
	vShards                = 82
	vParentNode            = 83
	vPortNodeIdent         = 94
	vPortConductorGrp      = 99
	vOVNVTEP               = 90
	vInstanceName          = 104
	vOVNVTEPRemoved        = 105
	vPortgroupShard        = 106
	vServiceDisableRamdisk = 108
	vHealth                = 109
	vDeployWaitAbort       = 110
	vDynamicPortgroup      = 111
	vHistoryProject        = 113
	vHistoryStates         = 115
)

type versionKey struct{}

// versionOf returns the negotiated minor version of a request.
func versionOf(ctx context.Context) int {
	if v, ok := ctx.Value(versionKey{}).(int); ok {
		return v
	}
	return MinMinor
}

func versionString(minor int) string { return "1." + strconv.Itoa(minor) }

// negotiate reads the requested microversion from OpenStack-API-Version ("baremetal 1.N") or
// X-OpenStack-Ironic-API-Version; no header means the minimum, as in Ironic.
func negotiate(h http.Header) (int, error) {
	raw := ""
	for _, v := range h.Values("OpenStack-API-Version") {
		for _, part := range strings.Split(v, ",") {
			svc, ver, ok := strings.Cut(strings.TrimSpace(part), " ")
			if ok && strings.EqualFold(svc, "baremetal") {
				raw = strings.TrimSpace(ver)
			}
		}
	}
	if raw == "" {
		if v := h.Get("X-OpenStack-Ironic-API-Version"); v != "" {
			parts := strings.Split(v, ",")
			raw = strings.TrimSpace(parts[len(parts)-1])
		}
	}
	if raw == "" {
		return MinMinor, nil
	}
	if strings.EqualFold(raw, "latest") {
		return MaxMinor, nil
	}
	majS, minS, ok := strings.Cut(raw, ".")
	maj, err1 := strconv.Atoi(strings.TrimSpace(majS))
	minor, err2 := strconv.Atoi(strings.TrimSpace(minS))
	if !ok || err1 != nil || err2 != nil || minor < 0 {
		return 0, ironwork.Errorf(ironwork.ENOTACCEPTABLE, "Invalid value for X-OpenStack-Ironic-API-Version header")
	}
	if maj != 1 {
		return 0, notAcceptable("Mutually exclusive versions requested. Version %d.%d requested but not supported by this service. The supported version range is: [1.%d, 1.%d].",
			maj, minor, MinMinor, MaxMinor)
	}
	if minor < MinMinor || minor > MaxMinor {
		return 0, notAcceptable("Version 1.%d was requested but the minor version is not supported by this service. The supported version range is: [1.%d, 1.%d].",
			minor, MinMinor, MaxMinor)
	}
	return minor, nil
}
