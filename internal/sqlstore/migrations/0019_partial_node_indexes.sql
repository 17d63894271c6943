-- Five node columns are empty (NULL) on most nodes: the lock holder, owner, lessee, shard and
-- parent node. Their indexes held an entry for every node all the same, which every enrolment
-- paid for, while the queries that use them look for a value (reservation = ?, owner = ? OR
-- lessee = ?, shard IN (...), parent_node = ?), never for NULL through the index. Kept only for
-- the rows that have a value, each insert touches five B-trees fewer (docs/decisions.md).
DROP INDEX nodes_reservation_idx;
CREATE INDEX nodes_reservation_idx ON nodes (reservation) WHERE reservation IS NOT NULL;
DROP INDEX nodes_owner_idx;
CREATE INDEX nodes_owner_idx ON nodes (owner) WHERE owner IS NOT NULL;
DROP INDEX nodes_lessee_idx;
CREATE INDEX nodes_lessee_idx ON nodes (lessee) WHERE lessee IS NOT NULL;
DROP INDEX nodes_shard_idx;
CREATE INDEX nodes_shard_idx ON nodes (shard) WHERE shard IS NOT NULL;
DROP INDEX nodes_parent_node_idx;
CREATE INDEX nodes_parent_node_idx ON nodes (parent_node) WHERE parent_node IS NOT NULL;
