package ironwork

import "time"

// DeployTemplate is a named set of deploy steps. A node whose instance asks for a trait equal
// to a template's name runs the template's steps in its deployment.
type DeployTemplate struct {
	ID        int64
	UUID      string
	Name      string
	Extra     JSONObject
	Steps     []DeployTemplateStep
	CreatedAt time.Time
	UpdatedAt *time.Time
}

// DeployTemplateStep is one step of a deploy template: an interface's step, its arguments and
// its priority (0 disables the step).
type DeployTemplateStep struct {
	Interface InterfaceKind
	Step      string
	Args      JSONObject
	Priority  int
}
