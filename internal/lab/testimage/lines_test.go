package testimage

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestConfigDriveLine(t *testing.T) {
	r := ConfigDriveReport{Found: true, Hostname: "my host", UUID: "u-1", Keys: []string{"b", "a,c"}, UserDataBytes: 7, NetworkData: true}
	line := r.Line()
	want := "IRONWORK-CONFIGDRIVE hostname=my_host uuid=u-1 keys=a_c,b user_data_bytes=7 network_data=yes"
	if line != want {
		t.Fatalf("Line() = %q, want %q", line, want)
	}
	got, err := ParseConfigDriveLine("[ 1.0] " + line + "\r")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Found || got.Hostname != "my_host" || got.UUID != "u-1" || !slices.Equal(got.Keys, []string{"a_c", "b"}) ||
		got.UserDataBytes != 7 || !got.NetworkData {
		t.Fatalf("parsed %+v", got)
	}
	if l := (ConfigDriveReport{Found: true}).Line(); l != "IRONWORK-CONFIGDRIVE hostname=- uuid=- keys= user_data_bytes=0 network_data=no" {
		t.Fatalf("empty report line %q", l)
	}
	none, err := ParseConfigDriveLine((ConfigDriveReport{}).Line())
	if err != nil || none.Found {
		t.Fatalf("none line parsed as %+v, %v", none, err)
	}
	for _, bad := range []string{"no marker", "IRONWORK-CONFIGDRIVE hostname=a", "IRONWORK-CONFIGDRIVE uuid=a hostname=b keys= user_data_bytes=0 network_data=no",
		"IRONWORK-CONFIGDRIVE hostname=a uuid=b keys= user_data_bytes=-1 network_data=no", "IRONWORK-CONFIGDRIVE hostname=a uuid=b keys= user_data_bytes=0 network_data=maybe"} {
		if _, err := ParseConfigDriveLine(bad); err == nil {
			t.Errorf("ParseConfigDriveLine(%q) accepted", bad)
		}
	}
}

func TestBootedLine(t *testing.T) {
	for _, fw := range []string{FirmwareBIOS, FirmwareUEFI} {
		got, ok := ParseBootedLine("\x1b[0m" + BootedLine(fw) + "\r")
		if !ok || got != fw {
			t.Errorf("ParseBootedLine(BootedLine(%s)) = %q, %v", fw, got, ok)
		}
	}
	if _, ok := ParseBootedLine(Marker + " firmware="); ok {
		t.Error("empty firmware accepted")
	}
}

func TestISOVolumeLabel(t *testing.T) {
	head := make([]byte, 17*2048)
	d := head[16*2048:]
	d[0], d[6] = 1, 1
	copy(d[1:], "CD001")
	copy(d[40:72], "config-2"+strings.Repeat(" ", 24))
	if l, err := ISOVolumeLabel(head); err != nil || l != "config-2" {
		t.Fatalf("label %q, %v", l, err)
	}
	d[1] = 'X'
	if _, err := ISOVolumeLabel(head); err == nil {
		t.Fatal("bad descriptor accepted")
	}
	if _, err := ISOVolumeLabel(head[:100]); err == nil {
		t.Fatal("short input accepted")
	}
}

func FuzzParseConfigDriveLine(f *testing.F) {
	f.Add("IRONWORK-CONFIGDRIVE hostname=a uuid=b keys=k1,k2 user_data_bytes=3 network_data=yes")
	f.Add("IRONWORK-CONFIGDRIVE none")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseConfigDriveLine(s)
		if err != nil || !r.Found {
			return
		}
		// What parses renders back to a line that parses the same.
		again, err := ParseConfigDriveLine(r.Line())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", r.Line(), err)
		}
		if again.Hostname != r.Hostname || again.UUID != r.UUID || again.UserDataBytes != r.UserDataBytes || again.NetworkData != r.NetworkData {
			t.Fatalf("round trip %+v → %+v", r, again)
		}
	})
}

func FuzzISOVolumeLabel(f *testing.F) {
	head := make([]byte, 17*2048)
	copy(head[16*2048:], "\x01CD001\x01")
	f.Add(head)
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ISOVolumeLabel(b)
		if err == nil && (len(l) > 32 || bytes.HasSuffix([]byte(l), []byte(" "))) {
			t.Fatalf("label %q", l)
		}
	})
}
