-- A node's revision changes with every write that can change how the API shows the node: any
-- UPDATE of its row (whoever writes it: an API server, a conductor, a lock release) and any
-- change of its traits. API servers cache each node's rendered JSON under its revision and
-- serve it only while the stored revision is the same (internal/httpapi/nodecache.go).
-- Node ids are never reused (identity column), so (id, revision) names one state of one node.
ALTER TABLE nodes ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
CREATE FUNCTION nodes_bump_revision() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.revision := OLD.revision + 1; RETURN NEW; END $$;
CREATE TRIGGER nodes_revision BEFORE UPDATE ON nodes FOR EACH ROW EXECUTE FUNCTION nodes_bump_revision();
CREATE FUNCTION node_traits_bump_revision() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF TG_OP <> 'INSERT' THEN UPDATE nodes SET revision = revision + 1 WHERE id = OLD.node_id; END IF; IF TG_OP <> 'DELETE' THEN UPDATE nodes SET revision = revision + 1 WHERE id = NEW.node_id; END IF; RETURN NULL; END $$;
CREATE TRIGGER node_traits_revision AFTER INSERT OR UPDATE OR DELETE ON node_traits FOR EACH ROW EXECUTE FUNCTION node_traits_bump_revision();
