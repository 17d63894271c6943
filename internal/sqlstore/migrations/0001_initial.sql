-- Initial schema. @ID@, @BOOL@ and @TEXT@ are replaced per database; times are stored as
-- microseconds since the Unix epoch (UTC) so that they sort and compare the same everywhere.
CREATE TABLE chassis (
    id @ID@,
    uuid VARCHAR(36) NOT NULL UNIQUE,
    description VARCHAR(255),
    extra @TEXT@,
    created_at BIGINT NOT NULL,
    updated_at BIGINT
);

CREATE TABLE conductors (
    id @ID@,
    hostname VARCHAR(255) NOT NULL UNIQUE,
    conductor_group VARCHAR(255) NOT NULL DEFAULT '',
    online @BOOL@ NOT NULL DEFAULT TRUE,
    drivers @TEXT@,
    created_at BIGINT NOT NULL,
    updated_at BIGINT
);

CREATE TABLE nodes (
    id @ID@,
    uuid VARCHAR(36) NOT NULL UNIQUE,
    name VARCHAR(255) UNIQUE,
    driver VARCHAR(255) NOT NULL,
    driver_info @TEXT@,
    driver_internal_info @TEXT@,
    extra @TEXT@,
    instance_info @TEXT@,
    instance_uuid VARCHAR(36) UNIQUE,
    instance_name VARCHAR(255),
    chassis_id BIGINT REFERENCES chassis(id),
    properties @TEXT@,
    power_state VARCHAR(15),
    target_power_state VARCHAR(15),
    provision_state VARCHAR(15) NOT NULL,
    target_provision_state VARCHAR(15),
    provision_updated_at BIGINT,
    last_error @TEXT@,
    maintenance @BOOL@ NOT NULL DEFAULT FALSE,
    maintenance_reason @TEXT@,
    fault VARCHAR(255),
    console_enabled @BOOL@ NOT NULL DEFAULT FALSE,
    inspection_started_at BIGINT,
    inspection_finished_at BIGINT,
    reservation VARCHAR(255),
    conductor_affinity BIGINT,
    raid_config @TEXT@,
    target_raid_config @TEXT@,
    clean_step @TEXT@,
    deploy_step @TEXT@,
    service_step @TEXT@,
    resource_class VARCHAR(80),
    bios_interface VARCHAR(255),
    boot_interface VARCHAR(255),
    console_interface VARCHAR(255),
    deploy_interface VARCHAR(255),
    firmware_interface VARCHAR(255),
    inspect_interface VARCHAR(255),
    management_interface VARCHAR(255),
    network_interface VARCHAR(255),
    power_interface VARCHAR(255),
    raid_interface VARCHAR(255),
    rescue_interface VARCHAR(255),
    storage_interface VARCHAR(255),
    vendor_interface VARCHAR(255),
    conductor_group VARCHAR(255) NOT NULL DEFAULT '',
    automated_clean @BOOL@,
    protected @BOOL@ NOT NULL DEFAULT FALSE,
    protected_reason @TEXT@,
    owner VARCHAR(255),
    lessee VARCHAR(255),
    description @TEXT@,
    allocation_id BIGINT,
    retired @BOOL@ NOT NULL DEFAULT FALSE,
    retired_reason @TEXT@,
    network_data @TEXT@,
    boot_mode VARCHAR(16),
    secure_boot @BOOL@,
    shard VARCHAR(255),
    parent_node VARCHAR(36),
    disable_power_off @BOOL@ NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT
);
CREATE INDEX nodes_provision_state_idx ON nodes (provision_state);
CREATE INDEX nodes_reservation_idx ON nodes (reservation);
CREATE INDEX nodes_conductor_group_idx ON nodes (conductor_group);
CREATE INDEX nodes_resource_class_idx ON nodes (resource_class);
CREATE INDEX nodes_owner_idx ON nodes (owner);
CREATE INDEX nodes_lessee_idx ON nodes (lessee);
CREATE INDEX nodes_shard_idx ON nodes (shard);
CREATE INDEX nodes_parent_node_idx ON nodes (parent_node);

CREATE TABLE node_traits (
    node_id BIGINT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    trait VARCHAR(255) NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (node_id, trait)
);

CREATE TABLE portgroups (
    id @ID@,
    uuid VARCHAR(36) NOT NULL UNIQUE,
    name VARCHAR(255) UNIQUE,
    address VARCHAR(18) UNIQUE,
    node_id BIGINT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    mode VARCHAR(255),
    properties @TEXT@,
    standalone_ports_supported @BOOL@ NOT NULL DEFAULT TRUE,
    physical_network VARCHAR(64),
    category VARCHAR(80),
    extra @TEXT@,
    internal_info @TEXT@,
    created_at BIGINT NOT NULL,
    updated_at BIGINT
);
CREATE INDEX portgroups_node_idx ON portgroups (node_id);

CREATE TABLE ports (
    id @ID@,
    uuid VARCHAR(36) NOT NULL UNIQUE,
    name VARCHAR(255) UNIQUE,
    address VARCHAR(18) NOT NULL UNIQUE,
    node_id BIGINT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    portgroup_id BIGINT REFERENCES portgroups(id),
    local_link_connection @TEXT@,
    pxe_enabled @BOOL@ NOT NULL DEFAULT TRUE,
    physical_network VARCHAR(64),
    is_smartnic @BOOL@ NOT NULL DEFAULT FALSE,
    extra @TEXT@,
    internal_info @TEXT@,
    description @TEXT@,
    vendor VARCHAR(255),
    category VARCHAR(80),
    created_at BIGINT NOT NULL,
    updated_at BIGINT
);
CREATE INDEX ports_node_idx ON ports (node_id);
CREATE INDEX ports_portgroup_idx ON ports (portgroup_id);

CREATE TABLE node_history (
    id @ID@,
    uuid VARCHAR(36) NOT NULL UNIQUE,
    node_id BIGINT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    conductor VARCHAR(255),
    event_type VARCHAR(255),
    severity VARCHAR(255),
    event @TEXT@,
    user_id VARCHAR(255),
    created_at BIGINT NOT NULL
);
CREATE INDEX node_history_node_idx ON node_history (node_id, created_at);

CREATE TABLE allocations (
    id @ID@,
    uuid VARCHAR(36) NOT NULL UNIQUE,
    name VARCHAR(255) UNIQUE,
    node_id BIGINT UNIQUE REFERENCES nodes(id),
    state VARCHAR(15) NOT NULL,
    last_error @TEXT@,
    resource_class VARCHAR(80),
    traits @TEXT@,
    candidate_nodes @TEXT@,
    owner VARCHAR(255),
    extra @TEXT@,
    conductor_affinity BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT
);

CREATE TABLE deploy_templates (
    id @ID@,
    uuid VARCHAR(36) NOT NULL UNIQUE,
    name VARCHAR(255) NOT NULL UNIQUE,
    extra @TEXT@,
    created_at BIGINT NOT NULL,
    updated_at BIGINT
);

CREATE TABLE deploy_template_steps (
    id @ID@,
    deploy_template_id BIGINT NOT NULL REFERENCES deploy_templates(id) ON DELETE CASCADE,
    interface VARCHAR(255) NOT NULL,
    step VARCHAR(255) NOT NULL,
    args @TEXT@,
    priority INTEGER NOT NULL
);
