-- maild store, MySQL/MariaDB schema version 2: one POP3 session per maildrop (see docs/store.md).

-- The maildrop lock, in the store so that it also holds between maild nodes
-- sharing it. A row is held by `owner` (unique across nodes) through the whole
-- second `expires_at`, then it is free for anyone: a crashed node's lock
-- lapses by itself.
CREATE TABLE IF NOT EXISTS maildrop_locks (
  mailbox_id BIGINT       NOT NULL,
  owner      VARCHAR(255) NOT NULL,
  expires_at BIGINT       NOT NULL,  -- unix seconds
  PRIMARY KEY (mailbox_id),
  CONSTRAINT maildrop_locks_mailbox FOREIGN KEY (mailbox_id) REFERENCES mailboxes (id)
    ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
