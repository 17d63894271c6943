package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ironwork/ironwork/internal/inspection"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// InspectionRulesConfig is the [inspection_rules] section, as Ironic's.
type InspectionRulesConfig struct {
	// BuiltInRules is a YAML (or JSON) file of built-in inspection rules. When it is set, each
	// start replaces the built-in rules in the database with the file's (an empty list
	// removes them); when it is not, the database's built-in rules stay as they are.
	BuiltInRules string `toml:"built_in_rules"`
	// MaskSecrets says when rules read password, auth_token and bmc_password of the inventory
	// and plugin data as "***": always (the default), never, or sensitive (every rule but the
	// sensitive ones).
	MaskSecrets string `toml:"mask_secrets"`
}

// validate checks the section; the built-in rules file is read and checked at start.
func (c InspectionRulesConfig) validate() error {
	switch inspection.MaskMode(c.MaskSecrets) {
	case "", inspection.MaskAlways, inspection.MaskNever, inspection.MaskSensitive:
		return nil
	}
	return fmt.Errorf("inspection_rules.mask_secrets: %q is not always, never or sensitive", c.MaskSecrets)
}

// startInspectionRules loads the built-in rules file into the database and returns the
// conductor's inspection rules hook.
func startInspectionRules(ctx context.Context, cfg InspectionRulesConfig, store *sqlstore.Store, log *slog.Logger) (*inspection.Hook, error) {
	if cfg.BuiltInRules != "" {
		rules, err := inspection.LoadBuiltIn(cfg.BuiltInRules)
		if err != nil {
			return nil, fmt.Errorf("inspection_rules.built_in_rules: %w", err)
		}
		if err := store.ReplaceBuiltInRules(ctx, rules); err != nil {
			return nil, fmt.Errorf("store built-in inspection rules: %w", err)
		}
		log.Info("built-in inspection rules loaded", "path", cfg.BuiltInRules, "count", len(rules))
	}
	e := &inspection.Engine{Log: log, Mask: inspection.MaskMode(cfg.MaskSecrets)}
	return inspection.NewHook(store, store, e, log), nil
}
