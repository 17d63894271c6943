package testimage

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Marker starts the line the booted image prints first: BootedLine.
const Marker = "IRONWORK-INSTANCE-BOOTED"

// ConfigDriveMarker starts the line the booted image prints after looking for a config drive.
const ConfigDriveMarker = "IRONWORK-CONFIGDRIVE"

// Firmware values in BootedLine.
const (
	FirmwareBIOS = "bios"
	FirmwareUEFI = "uefi"
)

// BootedLine is "IRONWORK-INSTANCE-BOOTED firmware=bios" or "... firmware=uefi".
func BootedLine(firmware string) string { return Marker + " firmware=" + firmware }

// ParseBootedLine finds BootedLine in a console line (anything may precede the marker) and
// returns its firmware value.
func ParseBootedLine(line string) (firmware string, ok bool) {
	i := strings.Index(line, Marker+" firmware=")
	if i < 0 {
		return "", false
	}
	f := strings.Fields(line[i+len(Marker)+len(" firmware="):])
	if len(f) == 0 {
		return "", false
	}
	return f[0], true
}

// ConfigDriveReport is what the booted image found on its config drive.
//
// Its Line is "IRONWORK-CONFIGDRIVE none" when there is no config drive, else
// "IRONWORK-CONFIGDRIVE hostname=H uuid=U keys=K1,K2 user_data_bytes=N network_data=yes|no":
// the hostname and uuid of openstack/latest/meta_data.json, the names of its public_keys
// sorted and comma-separated (empty when none), the size of openstack/latest/user_data (0
// when absent) and whether openstack/latest/network_data.json exists. Values are cleaned so
// the line stays parseable: whitespace, '=' and (in key names) ',' become '_', an empty
// hostname or uuid is "-".
type ConfigDriveReport struct {
	Found         bool
	Hostname      string
	UUID          string
	Keys          []string
	UserDataBytes int64
	NetworkData   bool
}

// Line renders the report as the console line described on ConfigDriveReport.
func (r ConfigDriveReport) Line() string {
	if !r.Found {
		return ConfigDriveMarker + " none"
	}
	keys := make([]string, 0, len(r.Keys))
	for _, k := range r.Keys {
		keys = append(keys, clean(k, true))
	}
	sort.Strings(keys)
	nd := "no"
	if r.NetworkData {
		nd = "yes"
	}
	return fmt.Sprintf("%s hostname=%s uuid=%s keys=%s user_data_bytes=%d network_data=%s", ConfigDriveMarker,
		orDash(clean(r.Hostname, false)), orDash(clean(r.UUID, false)), strings.Join(keys, ","), r.UserDataBytes, nd)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func clean(s string, comma bool) string {
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f || r == '=' || (comma && r == ',') {
			return '_'
		}
		return r
	}, s)
}

// ParseConfigDriveLine finds a ConfigDriveReport line in a console line (anything may
// precede the marker) and parses it. Hostname and UUID come back as printed ("-" for empty).
func ParseConfigDriveLine(line string) (ConfigDriveReport, error) {
	i := strings.Index(line, ConfigDriveMarker+" ")
	if i < 0 {
		return ConfigDriveReport{}, errors.New("no " + ConfigDriveMarker + " line")
	}
	fields := strings.Fields(line[i+len(ConfigDriveMarker):])
	if len(fields) == 1 && fields[0] == "none" {
		return ConfigDriveReport{}, nil
	}
	want := []string{"hostname", "uuid", "keys", "user_data_bytes", "network_data"}
	if len(fields) != len(want) {
		return ConfigDriveReport{}, fmt.Errorf("%s line: want %d fields, got %d", ConfigDriveMarker, len(want), len(fields))
	}
	r := ConfigDriveReport{Found: true}
	for n, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k != want[n] {
			return ConfigDriveReport{}, fmt.Errorf("%s line: field %d is %q, want %s=", ConfigDriveMarker, n+1, f, want[n])
		}
		if v == "" && (k == "hostname" || k == "uuid") {
			return ConfigDriveReport{}, fmt.Errorf("%s line: empty %s (Line prints \"-\")", ConfigDriveMarker, k)
		}
		if clean(v, false) != v {
			return ConfigDriveReport{}, fmt.Errorf("%s line: %s %q holds a character Line never prints", ConfigDriveMarker, k, v)
		}
		switch k {
		case "hostname":
			r.Hostname = v
		case "uuid":
			r.UUID = v
		case "keys":
			if v != "" {
				r.Keys = strings.Split(v, ",")
			}
		case "user_data_bytes":
			b, err := strconv.ParseInt(v, 10, 64)
			if err != nil || b < 0 {
				return ConfigDriveReport{}, fmt.Errorf("%s line: user_data_bytes %q is not a byte count", ConfigDriveMarker, v)
			}
			r.UserDataBytes = b
		case "network_data":
			switch v {
			case "yes":
				r.NetworkData = true
			case "no":
			default:
				return ConfigDriveReport{}, fmt.Errorf("%s line: network_data %q is not yes or no", ConfigDriveMarker, v)
			}
		}
	}
	return r, nil
}

// ISOVolumeLabel returns the volume identifier of an ISO 9660 filesystem, given at least the
// first 17 sectors of 2048 bytes (the primary volume descriptor is sector 16), trailing
// spaces removed.
func ISOVolumeLabel(head []byte) (string, error) {
	const pvd = 16 * 2048
	if len(head) < pvd+2048 {
		return "", errors.New("iso9660: too short for a primary volume descriptor")
	}
	d := head[pvd : pvd+2048]
	if d[0] != 1 || string(d[1:6]) != "CD001" || d[6] != 1 {
		return "", errors.New("iso9660: no primary volume descriptor")
	}
	return strings.TrimRight(string(d[40:72]), " \x00"), nil
}
