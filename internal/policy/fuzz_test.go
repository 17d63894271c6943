package policy

import "testing"

// FuzzPolicyFile parses arbitrary policy files: no input may panic or loop, a file that loads
// evaluates every rule it defines without panicking, and a refused file says why.
func FuzzPolicyFile(f *testing.F) {
	for _, s := range []string{
		"", "\"baremetal:node:get\": \"role:admin\"\n",
		"\"baremetal:node:get\": \"rule:a\"\na: \"project_id:%(node.owner)s or not (role:x and @)\"\n",
		"{\"baremetal:node:list\": \"!\"}", "a: [b]\n", "x: \"rule:x\"\n",
		"\"baremetal:node:get\": \"'P1':%(node.owner)s and True:%(x)s\"\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, file string) {
		e, err := Parse([]byte(file), "")
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		for name := range e.rules {
			for _, p := range []Principal{ownerMember, systemAdmin, {}} {
				e.Check(name, p, nodeP1P2)
			}
		}
	})
}

// FuzzCheckString parses arbitrary check strings and evaluates those that parse.
func FuzzCheckString(f *testing.F) {
	for _, s := range []string{"", "@", "role:a or not (role:b and project_id:%(node.owner)s)", "((((", "rule:x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parse(s, map[string]bool{})
		if err != nil {
			return
		}
		c.eval(&evalCtx{rules: map[string]check{}, creds: ownerMember.creds(), target: map[string]any{"node.owner": "P1"}})
	})
}
