package policy

import (
	"errors"
	"strings"
	"testing"
)

var (
	systemAdmin  = Principal{UserID: "root", System: true, Roles: ImplyRoles([]string{"admin"})}
	systemReader = Principal{UserID: "audit", System: true, Roles: ImplyRoles([]string{"reader"})}
	ownerMember  = Principal{UserID: "o", ProjectID: "P1", ProjectName: "p1", Roles: ImplyRoles([]string{"member"})}
	ownerAdmin   = Principal{UserID: "oa", ProjectID: "P1", ProjectName: "p1", Roles: ImplyRoles([]string{"admin"})}
	lesseeMember = Principal{UserID: "l", ProjectID: "P2", ProjectName: "p2", Roles: ImplyRoles([]string{"member"})}
	lesseeReader = Principal{UserID: "lr", ProjectID: "P2", ProjectName: "p2", Roles: []string{"reader"}}
	stranger     = Principal{UserID: "x", ProjectID: "P3", Roles: ImplyRoles([]string{"admin"})}
	service      = Principal{UserID: "nova", ProjectID: "S", ProjectName: "service", Roles: []string{"service"}}
	nodeP1P2     = Target{Node: true, NodeOwner: "P1", NodeLessee: "P2"}
	unowned      = Target{Node: true}
)

// TestDefaults checks Ironic's default rules for the personas of its documentation.
func TestDefaults(t *testing.T) {
	e := New("")
	for _, tc := range []struct {
		rule string
		who  Principal
		t    Target
		want bool
	}{
		{"baremetal:node:get", systemReader, unowned, true},
		{"baremetal:node:get", ownerMember, nodeP1P2, true},
		{"baremetal:node:get", lesseeReader, nodeP1P2, true},
		{"baremetal:node:get", stranger, nodeP1P2, false},
		{"baremetal:node:get", ownerMember, unowned, false},
		{"baremetal:node:update:driver_info", ownerMember, nodeP1P2, true},
		{"baremetal:node:update:driver_info", lesseeMember, nodeP1P2, false},
		{"baremetal:node:update_extra", lesseeMember, nodeP1P2, true},
		{"baremetal:node:update:owner", ownerAdmin, nodeP1P2, false},
		{"baremetal:node:update:owner", systemAdmin, nodeP1P2, true},
		{"baremetal:node:set_provision_state", lesseeMember, nodeP1P2, false},
		{"baremetal:node:set_provision_state", Principal{ProjectID: "P2", Roles: ImplyRoles([]string{"admin"})}, nodeP1P2, true},
		{"baremetal:node:delete", ownerAdmin, nodeP1P2, false},
		{"baremetal:node:delete:self_owned_node", ownerAdmin, nodeP1P2, true},
		{"baremetal:node:list_all", systemReader, Target{}, true},
		{"baremetal:node:list_all", ownerAdmin, Target{}, false},
		{"baremetal:node:list", lesseeReader, Target{}, true},
		{"baremetal:node:get:filter_threshold", ownerAdmin, Target{}, false},
		{"baremetal:node:get:driver_info", ownerMember, nodeP1P2, true},
		{"baremetal:node:get:driver_info", lesseeMember, nodeP1P2, false},
		{"baremetal:driver:get", service, Target{}, true}, // rule:service_role (project "service")
		{"baremetal:driver:get", Principal{ProjectName: "other", ProjectID: "O", Roles: []string{"service"}}, Target{}, false},
		{"baremetal:allocation:get", ownerMember, Target{Allocation: true, AllocationOwner: "P1"}, true},
		{"baremetal:allocation:get", lesseeMember, Target{Allocation: true, AllocationOwner: "P1"}, false},
		{"show_password", systemAdmin, unowned, false},
		{"no:such:rule", systemAdmin, unowned, false},
	} {
		if got := e.Authorize(tc.rule, tc.who, tc.t); got != tc.want {
			t.Errorf("%s for %s/%s%v: %v, want %v", tc.rule, tc.who.UserID, tc.who.ProjectID, tc.who.Roles, got, tc.want)
		}
	}
	// A system-scoped caller (no project) never matches project_id:%(node.owner)s, not even
	// on a node without an owner (Python's "None" == "None").
	if e.Check("is_node_owner_test", Principal{System: true}, unowned) {
		t.Error("unknown rule passed")
	}
	noauth := Principal{Unrestricted: true}
	if !e.Authorize("baremetal:node:delete", noauth, unowned) || e.Check("show_password", noauth, unowned) {
		t.Error("unrestricted: every authorization passes, secret rules do not")
	}
}

// TestCheckLanguage evaluates oslo.policy's check language.
func TestCheckLanguage(t *testing.T) {
	for _, tc := range []struct {
		check string
		want  bool
	}{
		{"", true}, {"@", true}, {"!", false},
		{"role:member", true}, {"role:MEMBER", true}, {"role:admin", false},
		{"not role:admin", true}, {"not not role:admin", false},
		{"role:admin or role:member", true}, {"role:admin and role:member", false},
		{"role:reader and role:member or role:admin", true},
		{"role:admin or role:reader and not role:member", false}, // and binds tighter than or
		{"(role:admin or role:reader) and not role:member", false},
		{"((role:admin) or (role:reader))", true},
		{"project_id:%(node.owner)s", true}, {"project_id:%(node.lessee)s", false},
		{"project_id:%(nothing)s", false}, {"project_id:P1", true},
		{"user_id:o", true}, {"system_scope:all", false},
		{"'P1':%(node.owner)s", true}, {"True:%(flag)s", true}, {"'x':%(flag)s", false},
		{"rule:alias", true},
	} {
		refs := map[string]bool{}
		c, err := parse(tc.check, refs)
		if err != nil {
			t.Errorf("parse %q: %v", tc.check, err)
			continue
		}
		alias, _ := parse("role:member", map[string]bool{})
		ev := &evalCtx{rules: map[string]check{"alias": alias}, creds: ownerMember.creds(),
			target: map[string]any{"node.owner": "P1", "node.lessee": nil, "flag": true}}
		if got := c.eval(ev); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.check, got, tc.want)
		}
	}
	for _, bad := range []string{"role:", "and", "role:a and", "(role:a", "role:a)", "role:a or or role:b",
		"justaword", "http://x.example/check", "project_id:%(node.owner", "not", "()"} {
		if _, err := parse(bad, map[string]bool{}); !errors.Is(err, ErrSyntax) {
			t.Errorf("parse %q: %v, want a syntax error", bad, err)
		}
	}
}

// TestPolicyFile loads overrides and refuses bad files with the line.
func TestPolicyFile(t *testing.T) {
	e, err := Parse([]byte(`# let lessees see driver_info, and readers list everything
"baremetal:node:get:driver_info": "rule:owner_or_lessee"
"owner_or_lessee": "project_id:%(node.owner)s or project_id:%(node.lessee)s"
baremetal:node:list_all: "role:reader"
`), "")
	if err != nil {
		t.Fatal(err)
	}
	if !e.Authorize("baremetal:node:get:driver_info", lesseeMember, nodeP1P2) {
		t.Error("override not applied")
	}
	if !e.Authorize("baremetal:node:list_all", lesseeReader, Target{}) {
		t.Error("override not applied")
	}
	if e.Authorize("baremetal:node:get:driver_info", stranger, nodeP1P2) {
		t.Error("override too wide")
	}
	if !e.Authorize("baremetal:node:get", ownerMember, nodeP1P2) {
		t.Error("defaults lost")
	}
	e, err = Parse([]byte(`"baremetal:node:set_provision_state:clean_steps": "role:admin and system_scope:all"`), "")
	if err != nil || e.Authorize("baremetal:node:set_provision_state:clean_steps", ownerMember, nodeP1P2) ||
		!e.Authorize("baremetal:node:set_provision_state", ownerMember, nodeP1P2) {
		t.Errorf("clean_steps override: %v", err)
	}
	for _, tc := range []struct{ file, want string }{
		{"\"baremetal:node:get\": \"role:admin\"\n\"baremetal:nod:get\": \"role:admin\"\n", "line 2"},
		{"\"baremetal:node:get\": \"role:admin and\"\n", "line 1"},
		{"a: b\n", "line 1"},
		{"\n\n\"baremetal:node:get\": \"rule:missing\"\n", "line 3"},
		{"\"baremetal:node:get\": \"rule:x\"\nx: \"rule:y\"\ny: \"rule:x\"\n", "refers to itself"},
		{"- a\n- b\n", "line 1"},
		{"\"baremetal:node:get\": [role:a]\n", "line 1"},
		{"\"baremetal:node:get\": \"role:a\"\n\"baremetal:node:get\": \"role:b\"\n", "line 2"},
		{"\"baremetal:node:get\": \"role:a\n", ""},
	} {
		_, err := Parse([]byte(tc.file), "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error naming %q", tc.file, err, tc.want)
		}
	}
}
