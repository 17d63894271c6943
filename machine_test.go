package ironwork_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ironwork/ironwork"
)

// ironicMachine dumps the provision state machine of the Ironic installed from Debian
// (python3-ironic): one "from|event|to|target" line per transition.
const ironicMachine = `
from ironic.common import states
m = states.machine
for s in sorted(m._transitions):
    for ev, jump in sorted(m._transitions[s].items()):
        print("%s|%s|%s|%s" % (s, ev, jump.name, m._states[jump.name].get("target") or ""))
`

// TestMachineMatchesIronic compares every transition of the real Ironic's state machine with
// ours. Ironic in Debian is 21.4; transitions added since (servicing, abort from wait
// call-back, ...) exist only on our side and are listed in newer.
func TestMachineMatchesIronic(t *testing.T) {
	if _, err := os.Stat("/usr/lib/python3/dist-packages/ironic/common/states.py"); err != nil {
		if os.Getenv("IRONWORK_SKIP_IRONIC") == "1" {
			t.Skip("IRONWORK_SKIP_IRONIC=1")
		}
		t.Fatal("python3-ironic is not installed (scripts/deps.sh installs it); IRONWORK_SKIP_IRONIC=1 skips this test")
	}
	out, err := exec.Command("/usr/bin/python3", "-c", ironicMachine).CombinedOutput()
	if err != nil {
		t.Fatalf("read Ironic's state machine: %v\n%s", err, out)
	}
	theirs := map[ironwork.Transition]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "|")
		if len(f) != 4 {
			t.Fatalf("unexpected line %q", sc.Text())
		}
		tr := ironwork.Transition{From: ironwork.ProvisionState(f[0]), Event: ironwork.Event(f[1]), To: ironwork.ProvisionState(f[2])}
		theirs[tr] = true
		to, ok := ironwork.NextState(tr.From, tr.Event)
		if !ok || to != tr.To {
			t.Errorf("Ironic: %s --%s--> %s; ours: %q (allowed %v)", tr.From, tr.Event, tr.To, to, ok)
		}
		if got := ironwork.TargetOf(tr.To); string(got) != f[3] {
			t.Errorf("target of %s: Ironic %q, ours %q", tr.To, f[3], got)
		}
	}
	if len(theirs) < 50 {
		t.Fatalf("read only %d transitions from Ironic", len(theirs))
	}
	// Added after 21.4: servicing (1.87), deploy and clean hold (1.85), abort in wait call-back
	// (1.110) and resuming inspection from inspect wait (1.84).
	newer := func(tr ironwork.Transition) bool {
		s := string(tr.From) + " " + string(tr.To)
		return strings.Contains(s, "servic") || strings.Contains(s, "hold") ||
			tr == ironwork.Transition{From: ironwork.DeployWait, Event: ironwork.EventAbort, To: ironwork.DeployFailed} ||
			tr == ironwork.Transition{From: ironwork.InspectWait, Event: ironwork.EventResume, To: ironwork.Inspecting}
	}
	for _, tr := range ironwork.Transitions {
		if !theirs[tr] && !newer(tr) {
			t.Errorf("ours has %s --%s--> %s, which Ironic lacks and which is not a known newer transition", tr.From, tr.Event, tr.To)
		}
	}
}

// TestEveryRefusedTransition checks that each (state, event) pair outside the table is refused
// and that the table itself is consistent.
func TestEveryRefusedTransition(t *testing.T) {
	events := []ironwork.Event{ironwork.EventDeploy, ironwork.EventDelete, ironwork.EventManage, ironwork.EventProvide,
		ironwork.EventInspect, ironwork.EventAbort, ironwork.EventClean, ironwork.EventAdopt, ironwork.EventRescue,
		ironwork.EventUnrescue, ironwork.EventUnhold, ironwork.EventService, ironwork.EventRebuild, ironwork.EventDone,
		ironwork.EventFail, ironwork.EventWait, ironwork.EventResume, ironwork.EventHold}
	allowed := map[[2]string]ironwork.ProvisionState{}
	for _, tr := range ironwork.Transitions {
		key := [2]string{string(tr.From), string(tr.Event)}
		if _, dup := allowed[key]; dup {
			t.Errorf("two transitions for %s on %s", tr.From, tr.Event)
		}
		allowed[key] = tr.To
	}
	refused := 0
	for _, s := range ironwork.ProvisionStates() {
		if !ironwork.IsStable(s) && ironwork.TargetOf(s) == "" {
			t.Errorf("unstable state %s has no target", s)
		}
		for _, e := range events {
			to, ok := ironwork.NextState(s, e)
			want, wantOK := allowed[[2]string{string(s), string(e)}]
			if ok != wantOK || to != want {
				t.Errorf("%s on %s: got %q %v, want %q %v", s, e, to, ok, want, wantOK)
			}
			if !ok {
				refused++
			}
		}
	}
	if refused == 0 {
		t.Fatal("no transition is refused")
	}
	for _, wait := range []ironwork.ProvisionState{ironwork.DeployWait, ironwork.CleanWait, ironwork.InspectWait,
		ironwork.RescueWait, ironwork.ServiceWait} {
		if _, ok := ironwork.FailedState(wait); !ok {
			t.Errorf("wait state %s cannot fail on a timeout", wait)
		}
	}
	for _, v := range ironwork.ProvisionVerbs() {
		verb, ev := v.Name, v.Event
		found := false
		for _, tr := range ironwork.Transitions {
			found = found || tr.Event == ev
		}
		if !found {
			t.Errorf("verb %s maps to %s, which no transition uses", verb, ev)
		}
	}
}
