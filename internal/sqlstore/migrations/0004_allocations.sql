-- Ironwork's extension of allocations: capabilities a node must have (properties.cpu_arch and
-- properties.capabilities), as a JSON object of strings.
ALTER TABLE allocations ADD COLUMN capabilities @TEXT@;
