-- At every heartbeat each conductor looks for the few nodes its checks are about among all of
-- them: the nodes whose console is enabled, and the deployed nodes no conductor has adopted
-- (sqlstore.NodeKeyFilter). Without an index the database scans every row to find none; these
-- partial indexes hold only those nodes, in id order, as the key pages read them. The queries
-- spell the conditions exactly as the indexes do, with no parameters, so that both databases
-- can use them (docs/scale.md).
CREATE INDEX nodes_console_enabled_idx ON nodes (id) WHERE console_enabled = TRUE;
CREATE INDEX nodes_unadopted_idx ON nodes (id) WHERE provision_state = 'active' AND COALESCE(conductor_affinity, 0) = 0;
