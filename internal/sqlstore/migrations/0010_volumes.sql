-- Volume connectors and targets (API 1.32), as Ironic's tables of the same names. The
-- constraint names end in the column whose duplicate the API reports.
CREATE TABLE volume_connectors (
    id @ID@,
    uuid VARCHAR(36) NOT NULL UNIQUE,
    node_id BIGINT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    type VARCHAR(32) NOT NULL,
    connector_id VARCHAR(255) NOT NULL,
    extra @TEXT@,
    created_at BIGINT NOT NULL,
    updated_at BIGINT,
    CONSTRAINT volume_connectors_connector_id_key UNIQUE (type, connector_id)
);
CREATE INDEX volume_connectors_node_idx ON volume_connectors (node_id);

CREATE TABLE volume_targets (
    id @ID@,
    uuid VARCHAR(36) NOT NULL UNIQUE,
    node_id BIGINT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    volume_type VARCHAR(64) NOT NULL,
    properties @TEXT@,
    boot_index INTEGER NOT NULL,
    volume_id VARCHAR(36) NOT NULL,
    extra @TEXT@,
    created_at BIGINT NOT NULL,
    updated_at BIGINT,
    CONSTRAINT volume_targets_boot_index_key UNIQUE (node_id, boot_index)
);
CREATE INDEX volume_targets_node_idx ON volume_targets (node_id);
