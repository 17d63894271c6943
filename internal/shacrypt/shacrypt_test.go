package shacrypt

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestSpecVectors checks the SHA-512 test vectors of the specification.
func TestSpecVectors(t *testing.T) {
	for _, tc := range []struct{ setting, password, want string }{
		{"$6$saltstring", "Hello world!",
			"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
		{"$6$rounds=10000$saltstringsaltstring", "Hello world!",
			"$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
		{"$6$rounds=5000$toolongsaltstring", "This is just a test",
			"$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0"},
		{"$6$rounds=10$roundstoolow", "the minimum number is still observed",
			"$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX."},
	} {
		got, err := Crypt(tc.password, tc.setting)
		if err != nil || got != tc.want {
			t.Errorf("Crypt(%q, %q) = %q %v\nwant %q", tc.password, tc.setting, got, err, tc.want)
		}
		if !Verify(tc.want, tc.password) || Verify(tc.want, tc.password+"x") {
			t.Errorf("Verify(%q) does not tell the right password from a wrong one", tc.want)
		}
	}
}

// TestAgainstOpenSSL compares Generate's hashes with openssl's, the peer that verifies them
// in a rescue ramdisk's /etc/shadow in practice (glibc's crypt uses the same algorithm).
func TestAgainstOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl")
	}
	for _, pw := range []string{"a", "S3cret rescue password with spaces", strings.Repeat("long", 40), "ünïcødé"} {
		h, err := Generate(pw)
		if err != nil {
			t.Fatal(err)
		}
		salt := strings.Split(h, "$")[2]
		out, err := exec.Command("openssl", "passwd", "-6", "-salt", salt, pw).Output()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(out)); got != h {
			t.Errorf("password %q: ours %q, openssl %q", pw, h, got)
		}
	}
	if _, err := Crypt("x", "$1$md5"); err == nil {
		t.Error("an MD5-crypt setting was accepted")
	}
}

// TestPasswordLengthBound checks that MaxPassword bytes are hashed (and verify) and one more
// byte is refused by Generate, Crypt and Verify: the hashing work grows with the length.
func TestPasswordLengthBound(t *testing.T) {
	longest := strings.Repeat("p", MaxPassword)
	h, err := Generate(longest)
	if err != nil || !Verify(h, longest) {
		t.Fatalf("a %d-byte password: %q %v", MaxPassword, h, err)
	}
	over := longest + "x"
	if _, err := Generate(over); !errors.Is(err, ErrTooLong) {
		t.Errorf("Generate of %d bytes: %v, want ErrTooLong", len(over), err)
	}
	if _, err := Crypt(over, "$6$saltstring"); !errors.Is(err, ErrTooLong) {
		t.Errorf("Crypt of %d bytes: %v, want ErrTooLong", len(over), err)
	}
	if Verify(h, over) {
		t.Error("Verify accepted a password over the bound")
	}
}
