-- Each conductor manages the nodes whose place on its group's hash ring (the first 8 bytes of
-- md5(uuid)) falls in the ranges its ring points own. Before this column a conductor read every
-- node's key at each pass over its share and hashed it to find its own; with the place stored
-- and indexed it reads its own ranges only (sqlstore.NodeKeysInRange, docs/scale.md). New nodes
-- get it on insert; the store fills it for the nodes stored before (and for any written by an
-- older version beside a newer one) when it opens, and conductors find those through the
-- partial index until then. SQLite has no md5: the whole fill is the store's.
ALTER TABLE nodes ADD COLUMN ring_key BIGINT;
CREATE INDEX nodes_ring_key_idx ON nodes (conductor_group, ring_key, id);
CREATE INDEX nodes_ring_key_missing_idx ON nodes (id) WHERE ring_key IS NULL;
