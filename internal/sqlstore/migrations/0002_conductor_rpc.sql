-- Where a conductor answers JSON-RPC from API-only servers.
ALTER TABLE conductors ADD COLUMN rpc_url VARCHAR(255);
