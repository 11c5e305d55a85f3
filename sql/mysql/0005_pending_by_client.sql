-- maild store, MySQL/MariaDB schema version 5: pending retrievals counted per
-- client address, as in sql/sqlite/0005_pending_by_client.sql.
CREATE INDEX IF NOT EXISTS pending_retrievals_by_client ON pending_retrievals (client_address, state);
