-- The hardware inventory and plugin data of a node's last inspection, as Ironic's
-- node_inventory table: one row per node, deleted with the node.
CREATE TABLE node_inventory (
    node_id BIGINT PRIMARY KEY REFERENCES nodes(id) ON DELETE CASCADE,
    inventory @TEXT@ NOT NULL,
    plugin_data @TEXT@ NOT NULL,
    created_at BIGINT NOT NULL
);
