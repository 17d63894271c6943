-- Inspection rules (API 1.96), as Ironic's inspection_rules table without its unused scope.
-- built_in marks the rules loaded from the configured file: the API shows them but does not
-- change them, and every start replaces them with the file's. uuid is wider than a UUID
-- because built-in rules may name themselves ("rule-dell-bmc-setup"), as in Ironic.
CREATE TABLE inspection_rules (
    id @ID@,
    uuid VARCHAR(255) NOT NULL UNIQUE,
    description VARCHAR(255),
    priority INTEGER NOT NULL DEFAULT 0,
    phase VARCHAR(16) NOT NULL,
    sensitive @BOOL@ NOT NULL DEFAULT FALSE,
    built_in @BOOL@ NOT NULL DEFAULT FALSE,
    conditions @TEXT@,
    actions @TEXT@ NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT
);
CREATE INDEX inspection_rules_phase_idx ON inspection_rules (phase);
