-- DHCPv6 leases: one per identity association of a client (hex DUID "/" hex IAID), so a
-- client keeps its IPv6 address across restarts and servers sharing the database never
-- hand one address out twice. mac is the client's link-layer address when known ('' if not).
CREATE TABLE dhcp6_leases (
    client VARCHAR(300) NOT NULL PRIMARY KEY,
    mac VARCHAR(17) NOT NULL DEFAULT '',
    ip VARCHAR(45) NOT NULL UNIQUE,
    expires_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
