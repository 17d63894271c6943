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

-- Node health (API 1.109): what the BMC reports of the hardware ("OK", "Warning", "Critical").
ALTER TABLE nodes ADD COLUMN health VARCHAR(255);

-- Dynamic portgroups (API 1.111): ports may join one unless told not to (the API's
-- available_for_dynamic_portgroup, inverted); a portgroup says whether it was built on demand.
ALTER TABLE ports ADD COLUMN not_for_dynamic_portgroup @BOOL@ NOT NULL DEFAULT FALSE;
ALTER TABLE portgroups ADD COLUMN dynamic_portgroup @BOOL@ NOT NULL DEFAULT FALSE;

-- Node history: the requester's project (API 1.113), and the node's provision state, target
-- and seconds in that state when the event was recorded (API 1.115).
ALTER TABLE node_history ADD COLUMN project VARCHAR(255);
ALTER TABLE node_history ADD COLUMN state VARCHAR(32);
ALTER TABLE node_history ADD COLUMN target_provision_state VARCHAR(32);
ALTER TABLE node_history ADD COLUMN duration_seconds INTEGER;
