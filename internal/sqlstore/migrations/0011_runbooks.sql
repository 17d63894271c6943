-- Runbooks (API 1.92, traits and description 1.112). Steps and traits are JSON lists kept
-- with their runbook: they are always read and written whole.
CREATE TABLE runbooks (
    id @ID@,
    uuid VARCHAR(36) NOT NULL UNIQUE,
    name VARCHAR(255) NOT NULL UNIQUE,
    description VARCHAR(255),
    steps @TEXT@ NOT NULL,
    traits @TEXT@,
    disable_ramdisk @BOOL@ NOT NULL DEFAULT FALSE,
    public @BOOL@ NOT NULL DEFAULT FALSE,
    owner VARCHAR(255),
    extra @TEXT@,
    created_at BIGINT NOT NULL,
    updated_at BIGINT
);
CREATE INDEX runbooks_owner_idx ON runbooks (owner);
