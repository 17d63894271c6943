-- DHCP leases handed out by the boot service in full mode, so that a MAC keeps its address
-- across restarts and several servers on one database never hand one address out twice.
CREATE TABLE dhcp_leases (
    mac VARCHAR(17) NOT NULL PRIMARY KEY,
    ip VARCHAR(45) NOT NULL UNIQUE,
    hostname VARCHAR(255) NOT NULL DEFAULT '',
    expires_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
