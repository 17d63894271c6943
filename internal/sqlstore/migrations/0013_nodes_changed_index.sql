-- The events stream polls for nodes changed since a moment (NodesChangedSince) every second:
-- an index on the same expression spares it a scan of the whole nodes table.
CREATE INDEX nodes_changed_idx ON nodes ((COALESCE(updated_at, created_at)));
