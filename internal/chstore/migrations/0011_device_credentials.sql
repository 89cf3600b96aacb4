-- A camera's own HTTP Basic credentials (user name: the device id), as a
-- bcrypt hash; empty when the device has none. Camera platforms and NVRs
-- cannot send bearer tokens.
ALTER TABLE {db}.devices ADD COLUMN secret_hash String DEFAULT '';
