-- A node's BIOS settings with their attribute registry fields (Ironic's bios_settings), and
-- its firmware components (Ironic's firmware_information), as the node's bios and firmware
-- interfaces last read them. Rows go with the node.
CREATE TABLE bios_settings (
    node_id BIGINT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    name VARCHAR(255) NOT NULL,
    value @TEXT@,
    attribute_type VARCHAR(255),
    allowable_values @TEXT@,
    lower_bound BIGINT,
    upper_bound BIGINT,
    min_length BIGINT,
    max_length BIGINT,
    read_only @BOOL@,
    reset_required @BOOL@,
    is_unique @BOOL@,
    created_at BIGINT NOT NULL,
    updated_at BIGINT,
    PRIMARY KEY (node_id, name)
);
CREATE TABLE firmware_information (
    node_id BIGINT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    component VARCHAR(255) NOT NULL,
    initial_version VARCHAR(255) NOT NULL,
    current_version VARCHAR(255) NOT NULL,
    last_version_flashed VARCHAR(255),
    created_at BIGINT NOT NULL,
    updated_at BIGINT,
    PRIMARY KEY (node_id, component)
);
