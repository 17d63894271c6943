-- Each conductor manages the nodes whose place on its group's hash ring (the first 8 bytes of
-- md5(uuid)) falls in the ranges its ring points own. Before this column a conductor read every
-- node's key at each pass over its share and hashed it to find its own; with the place stored
-- and indexed it reads its own ranges only (sqlstore.NodeKeysInRange, docs/scale.md). New nodes
-- get it on insert; the nodes stored before get it here, the hash computed by the database
-- (sqlstore.RingKey's value: the 64 bits read as a signed number). Any written by an older
-- version beside a newer one are filled when a store opens, and conductors find those through
-- the partial index until then.
ALTER TABLE nodes ADD COLUMN ring_key BIGINT;
UPDATE nodes SET ring_key = ('x' || substr(md5(uuid), 1, 16))::bit(64)::bigint;
CREATE INDEX nodes_ring_key_idx ON nodes (conductor_group, ring_key, id);
CREATE INDEX nodes_ring_key_missing_idx ON nodes (id) WHERE ring_key IS NULL;
