// Package shacrypt computes SHA-512-crypt password hashes ("$6$salt$..."), the format of
// Ironic's rescue_password_hash and of /etc/shadow, written from Ulrich Drepper's public
// specification ("Unix crypt using SHA-256 and SHA-512"). It only hashes and verifies; it
// stores nothing and knows nothing of nodes.
package shacrypt

import (
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Rounds bounds and default, as the specification sets them.
const (
	DefaultRounds = 5000
	MinRounds     = 1000
	MaxRounds     = 999_999_999
	maxSalt       = 16
)

// MaxPassword is the longest password, in bytes, Generate and Crypt hash: every round hashes
// the password again, so the work grows with its length (a 70,000-byte password costs 5000
// rounds of 100 KB of SHA-512, seconds of CPU). It is libxcrypt's: its crypt(3) refuses a
// phrase of CRYPT_MAX_PASSPHRASE_SIZE (512) bytes or more, so a longer password could not be
// checked at a login that uses it anyway.
const MaxPassword = 511

// ErrTooLong reports a password longer than MaxPassword.
var ErrTooLong = fmt.Errorf("password longer than %d bytes", MaxPassword)

const alphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// ErrFormat reports a string that is not a SHA-512-crypt hash.
var ErrFormat = errors.New("not a sha512-crypt hash")

// Generate hashes password with a random 16-character salt and the default rounds. A password
// longer than MaxPassword is refused (Crypt's ErrTooLong).
func Generate(password string) (string, error) {
	b := make([]byte, maxSalt)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make salt: %w", err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return Crypt(password, "$6$"+string(b))
}

// Crypt hashes password with the settings of setting: "$6$salt" or "$6$rounds=N$salt",
// optionally followed by "$" and a hash (ignored), as crypt(3) takes them. A password longer
// than MaxPassword is refused (ErrTooLong), as libxcrypt's crypt(3) refuses it.
func Crypt(password, setting string) (string, error) {
	if len(password) > MaxPassword {
		return "", ErrTooLong
	}
	rest, ok := strings.CutPrefix(setting, "$6$")
	if !ok {
		return "", ErrFormat
	}
	rounds, custom := DefaultRounds, false
	if r, after, found := strings.Cut(rest, "$"); found && strings.HasPrefix(r, "rounds=") {
		n, err := strconv.ParseUint(strings.TrimPrefix(r, "rounds="), 10, 64)
		if err != nil {
			return "", fmt.Errorf("%w: rounds %q", ErrFormat, r)
		}
		rounds, custom, rest = int(min(max(n, MinRounds), MaxRounds)), true, after
	}
	salt, _, _ := strings.Cut(rest, "$")
	if len(salt) > maxSalt {
		salt = salt[:maxSalt]
	}
	sum := digest([]byte(password), []byte(salt), rounds)
	var out strings.Builder
	out.WriteString("$6$")
	if custom {
		fmt.Fprintf(&out, "rounds=%d$", rounds)
	}
	out.WriteString(salt)
	out.WriteByte('$')
	encode(&out, sum)
	return out.String(), nil
}

// Verify reports whether password matches hash, in time independent of where they differ.
func Verify(hash, password string) bool {
	got, err := Crypt(password, hash)
	return err == nil && subtle.ConstantTimeCompare([]byte(got), []byte(hash)) == 1
}

// digest is the algorithm's steps 1 to 21.
func digest(p, s []byte, rounds int) []byte {
	h := sha512.New()
	h.Write(p)
	h.Write(s)
	h.Write(p)
	b := h.Sum(nil)

	h.Reset()
	h.Write(p)
	h.Write(s)
	for n := len(p); n > 0; n -= 64 {
		h.Write(b[:min(n, 64)])
	}
	for n := len(p); n > 0; n >>= 1 {
		if n&1 != 0 {
			h.Write(b)
		} else {
			h.Write(p)
		}
	}
	a := h.Sum(nil)

	h.Reset()
	for range len(p) {
		h.Write(p)
	}
	pSeq := repeat(h.Sum(nil), len(p))

	h.Reset()
	for range 16 + int(a[0]) {
		h.Write(s)
	}
	sSeq := repeat(h.Sum(nil), len(s))

	c := a
	for i := range rounds {
		h.Reset()
		if i&1 != 0 {
			h.Write(pSeq)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(sSeq)
		}
		if i%7 != 0 {
			h.Write(pSeq)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(pSeq)
		}
		c = h.Sum(nil)
	}
	return c
}

// repeat returns n bytes of d repeated.
func repeat(d []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, d[:min(len(d), n-len(out))]...)
	}
	return out
}

// encode writes the 64-byte digest in the specification's byte order and base-64 alphabet.
func encode(out *strings.Builder, c []byte) {
	put := func(b2, b1, b0 byte, n int) {
		w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
		for range n {
			out.WriteByte(alphabet[w&0x3f])
			w >>= 6
		}
	}
	// Groups (0,21,42), (22,43,1), (44,2,23), ...: each group starts 22 bytes (mod 63) after
	// the previous one, and its bytes are 21 apart.
	for i := range 21 {
		x := i * 22 % 63
		put(c[x], c[(x+21)%63], c[(x+42)%63], 4)
	}
	put(0, 0, c[63], 2)
}
