-- DHCP leases per subnet (issue 22): a conductor serving several racks behind relays may give
-- one MAC an address on each rack's subnet, so the key becomes (mac, subnet); an address stays
-- unique across every subnet and every server on the database. Leases written before this
-- migration did not record their subnet and keep an empty one: the server reuses such a row's
-- address for its MAC and then files it under the subnet.
CREATE TABLE dhcp_leases_v2 (
    mac VARCHAR(17) NOT NULL,
    subnet VARCHAR(18) NOT NULL,
    ip VARCHAR(45) NOT NULL UNIQUE,
    hostname VARCHAR(255) NOT NULL DEFAULT '',
    expires_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (mac, subnet)
);
INSERT INTO dhcp_leases_v2 (mac, subnet, ip, hostname, expires_at, updated_at)
    SELECT mac, '', ip, hostname, expires_at, updated_at FROM dhcp_leases;
DROP TABLE dhcp_leases;
ALTER TABLE dhcp_leases_v2 RENAME TO dhcp_leases;
