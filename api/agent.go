package api

import "encoding/json"

// The deploy agent's wire types, as ironic-python-agent (IPA) and Ironic speak them, so that
// Ironwork's agent serves a real Ironic and a real IPA ramdisk serves Ironwork.

// LookupResponse is the answer of GET /v1/lookup?addresses=MAC,MAC[&node_uuid=UUID].
type LookupResponse struct {
	Node   map[string]any `json:"node"`
	Config LookupConfig   `json:"config"`
}

// LookupConfig is the agent's configuration in a lookup answer.
type LookupConfig struct {
	// HeartbeatTimeout (seconds): the agent heartbeats well within it.
	HeartbeatTimeout int `json:"heartbeat_timeout"`
	// AgentToken is the secret every later heartbeat and command carries; a node whose token
	// was already handed out gets "******" and the agent keeps the one it has.
	AgentToken         string `json:"agent_token"`
	AgentTokenRequired bool   `json:"agent_token_required"`
}

// HeartbeatRequest is the body of POST /v1/heartbeat/{node}: what the agent sends, what the
// API decodes, and what the conductor acts on (conductor.Heartbeat is this type).
type HeartbeatRequest struct {
	CallbackURL        string `json:"callback_url"`
	AgentVerifyCA      string `json:"agent_verify_ca,omitempty"`
	AgentToken         string `json:"agent_token,omitempty"`
	AgentVersion       string `json:"agent_version,omitempty"`
	AgentStatus        string `json:"agent_status,omitempty"` // start, idle, busy, error
	AgentStatusMessage string `json:"agent_status_message,omitempty"`
	// Progress is Ironwork's extension: what the agent's running command has done.
	Progress *Progress `json:"ironwork_progress,omitempty"`
}

// Progress of a long agent command (writing an image, erasing a disk).
type Progress struct {
	Command        string  `json:"command"`
	BytesDone      int64   `json:"bytes_done"`
	BytesTotal     int64   `json:"bytes_total"` // -1 when unknown
	BytesPerSecond float64 `json:"bytes_per_second"`
}

// AgentCommand is the body of POST {callback_url}/v1/commands/?wait=BOOL&agent_token=TOKEN.
type AgentCommand struct {
	Name   string         `json:"name"` // "extension.command", e.g. "standby.prepare_image"
	Params map[string]any `json:"params"`
}

// Command statuses.
const (
	CommandRunning   = "RUNNING"
	CommandSucceeded = "SUCCEEDED"
	CommandFailed    = "FAILED"
)

// CommandResult is the agent's record of a command: the answer of POST /v1/commands and an
// item of GET /v1/commands.
type CommandResult struct {
	ID            string          `json:"id"`
	CommandName   string          `json:"command_name"`
	CommandParams map[string]any  `json:"command_params"`
	CommandStatus string          `json:"command_status"`
	CommandError  *CommandError   `json:"command_error"`
	CommandResult json.RawMessage `json:"command_result"`
}

// CommandError is why a command failed.
type CommandError struct {
	Type    string `json:"type"`
	Code    int    `json:"code"`
	Message string `json:"message"`
	Details string `json:"details"`
}

// CommandList is the answer of GET /v1/commands.
type CommandList struct {
	Commands []CommandResult `json:"commands"`
}
