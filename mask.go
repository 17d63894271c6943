package ironwork

import (
	"regexp"
	"strings"
)

// Masking follows the rules of Ironic (oslo's mask_dict_password and mask_password): the value
// of a member whose name looks secret is hidden whole; in every other string, a secret written
// as "key=value", "key: value", "--key value" or "<key>value</key>" has its value hidden, and so
// does the password of a URL's user information. Nested objects and lists are masked too.

// Masked is the placeholder shown instead of a secret.
const Masked = "******"

// secretWords are the fragments of names whose values are secrets.
var secretWords = []string{"password", "passwd", "pswd", "adminpass", "admin_pass", "auth_token", "new_pass",
	"secret", "token", "configdrive", "chappassword", "encrypted_key", "private_key", "fernetkey", "sslkey",
	"passphrase", "snmp_auth_key", "snmp_priv_key"}

// IsSecretKey reports whether a member named k holds a secret.
func IsSecretKey(k string) bool {
	k = strings.ToLower(k)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

var (
	secretAlt = "(?:" + strings.Join(secretWords, "|") + ")"
	// key=value, key: value, "key": "value" (the key may carry a prefix or suffix, as
	// ipmi_password or admin_token).
	secretAssignRE = regexp.MustCompile(`(?i)([\w.-]*` + secretAlt + `[\w.-]*["']?\s*[=:]\s*["']?)([^\s"'&,;}<]+)`)
	// --key value and -key value, as on a kernel or tool command line.
	secretFlagRE = regexp.MustCompile(`(?i)((?:^|\s)--?[\w.-]*` + secretAlt + `[\w.-]*\s+["']?)([^\s"'-][^\s"']*)`)
	// <key>value</key>
	secretXMLRE = regexp.MustCompile(`(?i)(<([\w.-]*` + secretAlt + `[\w.-]*)>)[^<]*(</[\w.-]+>)`)
	// scheme://user:password@host
	urlPasswordRE = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://[^/:@\s]*):[^/@\s]*@`)
)

// MaskString hides the secrets written inside s.
func MaskString(s string) string {
	if !strings.Contains(s, "@") && !containsSecretWord(s) {
		return s
	}
	s = urlPasswordRE.ReplaceAllString(s, "${1}:"+Masked+"@")
	s = secretXMLRE.ReplaceAllString(s, "${1}"+Masked+"${3}")
	s = secretFlagRE.ReplaceAllString(s, "${1}"+Masked)
	s = secretAssignRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := secretAssignRE.FindStringSubmatch(m)
		if sub[2] == Masked {
			return m
		}
		return sub[1] + Masked
	})
	return s
}

func containsSecretWord(s string) bool {
	s = strings.ToLower(s)
	for _, w := range secretWords {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// MaskSecrets returns a copy of o with every secret hidden: values of secret members, secrets
// inside strings, in nested objects and in lists. o itself is not changed.
func MaskSecrets(o JSONObject) JSONObject {
	out := make(JSONObject, len(o))
	for k, v := range o {
		if IsSecretKey(k) {
			out[k] = Masked
			continue
		}
		out[k] = MaskValue(v)
	}
	return out
}

// MaskValue masks any decoded JSON value as MaskSecrets masks an object's members.
func MaskValue(v any) any {
	switch x := v.(type) {
	case string:
		return MaskString(x)
	case map[string]any:
		return MaskSecrets(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = MaskValue(e)
		}
		return out
	}
	return v
}
