package conductor

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ironwork/ironwork/internal/shacrypt"
)

// ProvisionRequest is a PUT /states/provision request.
type ProvisionRequest struct {
	NodeRef
	Target string `json:"target"`
	// ConfigDrive is nil when the request gave none (or null).
	ConfigDrive    *ConfigDrive  `json:"configdrive,omitempty"`
	CleanSteps     []StepRequest `json:"clean_steps,omitempty"`
	DeploySteps    []StepRequest `json:"deploy_steps,omitempty"`
	ServiceSteps   []StepRequest `json:"service_steps,omitempty"`
	RescuePassword string        `json:"rescue_password,omitempty"`
	// RescuePasswordHash is the SHA-512-crypt hash of the rescue password; callers that hash
	// the password themselves (the RPC router) send it instead of RescuePassword, so the
	// password never travels.
	RescuePasswordHash string `json:"rescue_password_hash,omitempty"`
	DisableRamdisk     bool   `json:"disable_ramdisk,omitempty"`
}

// StepRequest is one step a provision request asks for (clean, deploy or service steps).
// Interface or Step empty is refused by the conductor; Priority nil is priority 0.
type StepRequest struct {
	Interface string         `json:"interface"`
	Step      string         `json:"step"`
	Args      map[string]any `json:"args,omitempty"`
	Priority  *int           `json:"priority,omitempty"`
}

// ConfigDrive is a deploy's config drive as a request gives it, in one of two forms: Encoded
// (a gzipped, base64-encoded ISO image, or its URL) or, when Dict is not nil, the object
// (meta_data, user_data, network_data, vendor_data) an image is built from. In JSON it is a
// string or an object, as in the API.
type ConfigDrive struct {
	Encoded string
	Dict    map[string]any
}

// MarshalJSON renders the config drive as the API takes it: an object or a string.
func (cd ConfigDrive) MarshalJSON() ([]byte, error) {
	if cd.Dict != nil {
		return json.Marshal(cd.Dict)
	}
	return json.Marshal(cd.Encoded)
}

// errConfigDriveType refuses a config drive that is neither a string nor an object.
var errConfigDriveType = errors.New("configdrive is neither a string nor an object")

// UnmarshalJSON reads a string or an object.
func (cd *ConfigDrive) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("decode configdrive: %w", err)
	}
	switch v := v.(type) {
	case string:
		*cd = ConfigDrive{Encoded: v}
	case map[string]any:
		*cd = ConfigDrive{Dict: v}
	default:
		return errConfigDriveType
	}
	return nil
}

// RescuePasswordHashKey is the instance_info key of the rescue password's SHA-512-crypt hash,
// as Ironic names it. The password itself is never stored.
const RescuePasswordHashKey = "hashed_rescue_password"

// HashRescuePassword moves a rescue password of req into RescuePasswordHash.
func (req *ProvisionRequest) HashRescuePassword() error {
	if req.RescuePassword == "" {
		return nil
	}
	h, err := shacrypt.Generate(req.RescuePassword)
	if err != nil {
		return fmt.Errorf("hash rescue password: %w", err)
	}
	req.RescuePassword, req.RescuePasswordHash = "", h
	return nil
}
