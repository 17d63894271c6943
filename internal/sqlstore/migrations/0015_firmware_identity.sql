-- The vendor, model and serial number of a node's firmware components (Ironic's 1.114), as
-- the firmware interface reads them where the BMC reports them; NULL when it does not.
ALTER TABLE firmware_information ADD COLUMN vendor VARCHAR(255);
ALTER TABLE firmware_information ADD COLUMN model VARCHAR(255);
ALTER TABLE firmware_information ADD COLUMN serial_number VARCHAR(255);
