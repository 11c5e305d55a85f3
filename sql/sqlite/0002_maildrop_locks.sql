-- maild store, SQLite schema version 2: one POP3 session per maildrop (see docs/store.md).

-- The maildrop lock, in the store so that it also holds between maild nodes
-- sharing it. A row is held by `owner` (unique across nodes) through the whole
-- second `expires_at`, then it is free for anyone: a crashed node's lock
-- lapses by itself.
CREATE TABLE maildrop_locks (
  mailbox_id INTEGER PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,
  owner      TEXT    NOT NULL,
  expires_at INTEGER NOT NULL  -- unix seconds
);
