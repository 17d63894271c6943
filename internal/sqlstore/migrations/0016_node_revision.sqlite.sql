-- A node's revision changes with every write that can change how the API shows the node: any
-- UPDATE of its row (whoever writes it: an API server, a conductor, a lock release) and any
-- change of its traits. API servers cache each node's rendered JSON under its revision and
-- serve it only while the stored revision is the same (internal/httpapi/nodecache.go).
-- Node ids are never reused (AUTOINCREMENT), so (id, revision) names one state of one node.
-- SQLite cannot change NEW in a trigger: an AFTER trigger bumps the row once more, guarded so
-- that its own UPDATE does not bump again.
ALTER TABLE nodes ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
CREATE TRIGGER nodes_revision AFTER UPDATE ON nodes FOR EACH ROW WHEN NEW.revision = OLD.revision
BEGIN UPDATE nodes SET revision = OLD.revision + 1 WHERE id = OLD.id; END;
CREATE TRIGGER node_traits_insert_revision AFTER INSERT ON node_traits FOR EACH ROW
BEGIN UPDATE nodes SET revision = revision + 1 WHERE id = NEW.node_id; END;
CREATE TRIGGER node_traits_delete_revision AFTER DELETE ON node_traits FOR EACH ROW
BEGIN UPDATE nodes SET revision = revision + 1 WHERE id = OLD.node_id; END;
CREATE TRIGGER node_traits_update_revision AFTER UPDATE ON node_traits FOR EACH ROW
BEGIN UPDATE nodes SET revision = revision + 1 WHERE id IN (OLD.node_id, NEW.node_id); END;
