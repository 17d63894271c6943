-- Secrets every Ironwork process of one deployment shares, generated once by the first
-- process that needs them (the conductors' JSON-RPC key).
CREATE TABLE shared_secrets (
    name VARCHAR(64) PRIMARY KEY,
    value @TEXT@ NOT NULL,
    created_at BIGINT NOT NULL
);
