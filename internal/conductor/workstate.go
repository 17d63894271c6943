package conductor

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/ironwork/ironwork"
)

// The conductor's keys in a node's driver_internal_info, and their typed accessors: no other
// file or package spells them. The names and values are visible in the API; those Ironic has
// keep Ironic's names.
const (
	agentTokenKey = "agent_secret_token"
	// agentTokenPregeneratedKey marks a token made before the agent booted and handed to it
	// on its boot media (virtual media), as Ironic's: lookups never return it, and a power
	// off or reboot keeps it (the media still carries it).
	agentTokenPregeneratedKey = "agent_secret_token_pregenerated"
	agentURLKey               = "agent_url"
	// agentVerifyCAKey is the certificate the agent generated at start and sent in its
	// heartbeat (PEM): calls to the agent verify against it (agenttls.go).
	agentVerifyCAKey  = "agent_verify_ca"
	agentVersionKey   = "agent_version"
	agentHeartbeatKey = "agent_last_heartbeat"
	agentProgressKey  = "ironwork_agent_progress"
	// agentUnreachableKey holds why the agent did not answer at its last heartbeat, for the
	// callback timeout's reason; an answer removes it.
	agentUnreachableKey = "ironwork_agent_unreachable"

	remainingKey = "ironwork_remaining_steps"
	stepKindKey  = "ironwork_step_kind"
	manualKey    = "ironwork_manual_clean"
)

// internalInfo returns a node's driver_internal_info, made when the node has none.
func internalInfo(n *ironwork.Node) ironwork.JSONObject {
	if n.DriverInternalInfo == nil {
		n.DriverInternalInfo = ironwork.JSONObject{}
	}
	return n.DriverInternalInfo
}

// AgentState is what a node knows of its deploy agent.
type AgentState struct {
	Token    string // the agent's secret token; empty until the agent looked itself up
	URL      string // where the agent listens, from its last heartbeat
	Version  string
	Progress map[string]any // the progress of the agent's current command, when it sent one
	// LastHeartbeat is when the agent last heartbeated (zero: never in this boot).
	LastHeartbeat time.Time
	// VerifyCA is the agent's own certificate (PEM), pinned at its first heartbeat of the boot;
	// empty when the agent serves plain HTTP or did not send one.
	VerifyCA string
}

// LoadAgent reads what a node knows of its agent.
func LoadAgent(n *ironwork.Node) AgentState {
	var a AgentState
	a.Token, _ = n.DriverInternalInfo[agentTokenKey].(string)
	a.URL, _ = n.DriverInternalInfo[agentURLKey].(string)
	a.Version, _ = n.DriverInternalInfo[agentVersionKey].(string)
	a.Progress, _ = n.DriverInternalInfo[agentProgressKey].(map[string]any)
	if at, ok := n.DriverInternalInfo[agentHeartbeatKey].(string); ok {
		a.LastHeartbeat, _ = time.Parse(time.RFC3339, at)
	}
	a.VerifyCA, _ = n.DriverInternalInfo[agentVerifyCAKey].(string)
	return a
}

// setAgentToken records the token handed to a node's agent.
func setAgentToken(n *ironwork.Node, token string) { internalInfo(n)[agentTokenKey] = token }

// recordHeartbeat records an agent's heartbeat at a time.
func recordHeartbeat(n *ironwork.Node, hb Heartbeat, at time.Time) {
	info := internalInfo(n)
	info[agentURLKey] = hb.CallbackURL
	info[agentVersionKey] = hb.AgentVersion
	info[agentHeartbeatKey] = at.UTC().Format(time.RFC3339)
	if hb.Progress != nil {
		info[agentProgressKey] = hb.Progress
	} else {
		delete(info, agentProgressKey)
	}
}

// ForgetAgent removes what a node knows of its agent (token, URL, pinned certificate): the
// next ramdisk boot looks up anew, and its agent generates a new certificate. Boot interfaces' callers use it when the ramdisk is (re)booted or removed.
func ForgetAgent(n *ironwork.Node) {
	for _, k := range []string{agentTokenKey, agentTokenPregeneratedKey, agentURLKey, agentVerifyCAKey, agentVersionKey, agentHeartbeatKey, agentProgressKey, agentUnreachableKey} {
		delete(n.DriverInternalInfo, k)
	}
}

// forgetAgentBoot is ForgetAgent for a power off or reboot: a pregenerated token stays, since
// the boot media that carries it is still inserted.
func forgetAgentBoot(n *ironwork.Node) {
	token, pre := n.DriverInternalInfo[agentTokenKey], n.DriverInternalInfo[agentTokenPregeneratedKey] == true
	ForgetAgent(n)
	if pre {
		info := internalInfo(n)
		info[agentTokenKey], info[agentTokenPregeneratedKey] = token, true
	}
}

// PregenerateAgentToken makes a node's agent token before the agent boots, for boot media
// that carry it (ipa-agent-token): lookups then withhold it. The caller saves the node.
func PregenerateAgentToken(n *ironwork.Node) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make agent token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(b)
	info := internalInfo(n)
	info[agentTokenKey], info[agentTokenPregeneratedKey] = token, true
	return token, nil
}

// stepState is where a node is in its steps: the kind running, the steps still to run after
// the current one, and whether cleaning is manual (it ends in manageable).
type stepState struct {
	Kind      StepKind
	Remaining []Step
	Manual    bool
}

// loadSteps reads a node's step state.
func loadSteps(n *ironwork.Node) stepState {
	var s stepState
	if k, ok := n.DriverInternalInfo[stepKindKey]; ok {
		s.Kind = StepKind(fmt.Sprint(k))
	}
	s.Remaining = stepsFromInfo(n.DriverInternalInfo[remainingKey])
	s.Manual, _ = n.DriverInternalInfo[manualKey].(bool)
	return s
}

// setManualClean records whether the cleaning that starts is manual.
func setManualClean(n *ironwork.Node, manual bool) { internalInfo(n)[manualKey] = manual }

// setRemainingSteps records the kind running and the steps still to run.
func setRemainingSteps(n *ironwork.Node, kind StepKind, remaining []Step) {
	info := internalInfo(n)
	info[remainingKey] = stepsToInfo(remaining)
	info[stepKindKey] = string(kind)
}

// dropRemainingSteps forgets the steps still to run (a failure or an abort).
func dropRemainingSteps(n *ironwork.Node) {
	delete(n.DriverInternalInfo, remainingKey)
	delete(n.DriverInternalInfo, bmcWaitKey)
}

// clearSteps forgets the whole step state (the steps ended).
func clearSteps(n *ironwork.Node) {
	for _, k := range []string{remainingKey, stepKindKey, manualKey, bmcWaitKey} {
		delete(n.DriverInternalInfo, k)
	}
}
