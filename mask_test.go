package ironwork_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ironwork/ironwork"
)

func TestMaskString(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"--password S3cr3t", "--password ******"},
		{"console=ttyS0 --password S3cr3t quiet", "console=ttyS0 --password ****** quiet"},
		{"ipmi_password=S3cr3t other=1", "ipmi_password=****** other=1"},
		{`{"admin_pass": "S3cr3t", "x": 1}`, `{"admin_pass": "******", "x": 1}`},
		{"token: abc.def", "token: ******"},
		{"<Password>S3cr3t</Password>", "<Password>******</Password>"},
		{"http://user:pass@host/path", "http://user:******@host/path"},
		{"https://admin:p%40ss@10.0.0.1:8000/redfish/v1", "https://admin:******@10.0.0.1:8000/redfish/v1"},
		{"http://host/path?x=1", "http://host/path?x=1"},
		{"ssh://git@host/repo", "ssh://git@host/repo"},
		{"mail user@example.com", "mail user@example.com"},
		{"the password is wrong", "the password is wrong"},
		{"plain", "plain"},
	} {
		if got := ironwork.MaskString(c.in); got != c.want {
			t.Errorf("MaskString(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestMaskSecrets(t *testing.T) {
	in := ironwork.JSONObject{
		"ipmi_password":   "S3cr3t",
		"ipmi_username":   "admin",
		"redfish_address": "https://admin:S3cr3t@10.0.0.5",
		"kernel_append":   "console=ttyS0 --password S3cr3t",
		"nested":          map[string]any{"auth_token": "t", "list": []any{"a", map[string]any{"secret": 1}, "x password=p"}},
		"n":               1.5,
	}
	want := ironwork.JSONObject{
		"ipmi_password":   ironwork.Masked,
		"ipmi_username":   "admin",
		"redfish_address": "https://admin:******@10.0.0.5",
		"kernel_append":   "console=ttyS0 --password ******",
		"nested":          map[string]any{"auth_token": ironwork.Masked, "list": []any{"a", map[string]any{"secret": ironwork.Masked}, "x password=******"}},
		"n":               1.5,
	}
	got := ironwork.MaskSecrets(in)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("MaskSecrets (-want +got):\n%s", d)
	}
	if in["ipmi_password"] != "S3cr3t" {
		t.Error("MaskSecrets changed its input")
	}
}
