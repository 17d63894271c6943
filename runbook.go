package ironwork

import "time"

// Runbook is a named, ordered list of clean or service steps (API 1.92) that a node may run
// in place of explicit steps, when one of its traits approves it: the runbook's name before
// API 1.112, one of the runbook's traits from 1.112 on. Owner limits it to a project unless
// Public.
type Runbook struct {
	ID             int64
	UUID           string
	Name           string
	Description    string
	Steps          []RunbookStep
	Traits         []string
	DisableRamdisk bool
	Public         bool
	Owner          string
	Extra          JSONObject
	CreatedAt      time.Time
	UpdatedAt      *time.Time
}

// RunbookStep is one step of a runbook: an interface's step, its arguments and its place in
// the run (lower Order runs first).
type RunbookStep struct {
	Interface InterfaceKind `json:"interface"`
	Step      string        `json:"step"`
	Args      JSONObject    `json:"args"`
	Order     int           `json:"order"`
}
