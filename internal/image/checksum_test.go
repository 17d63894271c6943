package image

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	hex32  = "0123456789abcdef0123456789abcdef"
	hex64  = hex32 + hex32
	hex128 = hex64 + hex64
)

func TestParseChecksum(t *testing.T) {
	tests := []struct {
		in      string
		want    checksumSpec
		wantErr string
	}{
		{in: "", want: checksumSpec{}},
		{in: "sha256:" + hex64, want: checksumSpec{d: digest{SHA256, hex64}}},
		{in: "SHA512:" + strings.ToUpper(hex128), want: checksumSpec{d: digest{SHA512, hex128}}},
		{in: "md5:" + hex32, want: checksumSpec{d: digest{MD5, hex32}}},
		{in: hex32, want: checksumSpec{d: digest{MD5, hex32}}},
		{in: hex64, want: checksumSpec{d: digest{SHA256, hex64}}},
		{in: " " + hex128 + "\n", want: checksumSpec{d: digest{SHA512, hex128}}},
		{in: "https://example.test/SHA256SUMS", want: checksumSpec{url: "https://example.test/SHA256SUMS"}},
		{in: "file:///srv/SHA256SUMS", want: checksumSpec{url: "file:///srv/SHA256SUMS"}},
		{in: "sha256:", wantErr: "empty digest"},
		{in: "sha256:" + hex32, wantErr: "sha256 digest has 32 characters, want 64"},
		{in: "sha1:" + hex32[:8] + hex32, wantErr: "unsupported algorithm"},
		{in: "abc", wantErr: "matches no algorithm"},
		{in: strings.Repeat("z", 64), wantErr: "not hex"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseChecksum(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseChecksum(%q) error = %v, want containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseChecksum(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(checksumSpec{}, digest{})); diff != "" {
				t.Errorf("parseChecksum(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseChecksumFile(t *testing.T) {
	other := strings.Repeat("f", 64)
	tests := []struct {
		name    string
		text    string
		file    string
		want    digest
		wantErr string
	}{
		{"gnu text mode", other + "  a.img\n" + hex64 + "  disk.qcow2\n", "disk.qcow2", digest{SHA256, hex64}, ""},
		{"gnu binary mode", other + " *a.img\n" + hex64 + " *disk.qcow2\n", "disk.qcow2", digest{SHA256, hex64}, ""},
		{"directory in name", hex64 + "  ./images/disk.qcow2\n" + other + "  b\n", "disk.qcow2", digest{SHA256, hex64}, ""},
		{"sha512sum", hex128 + "  disk.raw\n", "disk.raw", digest{SHA512, hex128}, ""},
		{"md5sum with comments", "# made by md5sum\n\n" + hex32 + "  k\n" + strings.Repeat("e", 32) + "  r\n", "k", digest{MD5, hex32}, ""},
		{"bsd tag", "SHA256 (other) = " + other + "\nSHA256 (disk.qcow2) = " + hex64 + "\n", "disk.qcow2", digest{SHA256, hex64}, ""},
		{"digest at end", "a.img " + other + "\ndisk.img\t" + hex64 + "\n", "disk.img", digest{SHA256, hex64}, ""},
		{"bare digest", hex64 + "\n", "anything", digest{SHA256, hex64}, ""},
		{"only line names another file", hex64 + "  other.img\n", "disk.img", digest{}, `no line for "disk.img" among 1 entries`},
		{"crlf", hex64 + "  disk.img\r\n" + other + "  x\r\n", "disk.img", digest{SHA256, hex64}, ""},
		{"no match among several", hex64 + "  a\n" + other + "  b\n", "c", digest{}, `no line for "c" among 2 entries`},
		{"empty", "\n# nothing\n", "c", digest{}, "no checksum lines"},
		{"garbage", "hello world\n", "c", digest{}, "no checksum lines"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseChecksumFile(tt.text, tt.file)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(digest{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzParseChecksumFile: checksum files come from remote servers.
func FuzzParseChecksumFile(f *testing.F) {
	f.Add(hex64+"  disk.img\n", "disk.img")
	f.Add("SHA512 (x) = "+hex128+"\n", "x")
	f.Add("# c\n"+hex32+" *k\n", "k")
	f.Add(" (", "")
	f.Fuzz(func(t *testing.T, text, name string) {
		d, err := parseChecksumFile(text, name)
		if err != nil {
			return
		}
		if n, ok := hexLen[d.algo]; !ok || len(d.hex) != n || d.hex != strings.ToLower(d.hex) {
			t.Fatalf("invalid digest %+v from %q", d, text)
		}
	})
}

// FuzzParseChecksum: checksums come from the API (instance_info).
func FuzzParseChecksum(f *testing.F) {
	f.Add("sha256:" + hex64)
	f.Add(hex32)
	f.Add("http://x/SUMS")
	f.Add("md5:")
	f.Fuzz(func(t *testing.T, s string) {
		spec, err := parseChecksum(s)
		if err != nil || spec.url != "" || spec.d.algo == "" {
			return
		}
		if n := hexLen[spec.d.algo]; len(spec.d.hex) != n {
			t.Fatalf("digest %+v from %q has the wrong length", spec.d, s)
		}
	})
}
