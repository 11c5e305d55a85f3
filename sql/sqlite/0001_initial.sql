-- maild store, SQLite schema version 1 (see docs/store.md).
-- Addresses compare case-insensitively (ASCII): COLLATE NOCASE on every address column.

-- Domains we receive mail for.
CREATE TABLE domains (
  id         INTEGER PRIMARY KEY,
  name       TEXT    NOT NULL COLLATE NOCASE UNIQUE,  -- stored lowercase
  created_at INTEGER NOT NULL                          -- unix seconds
);

-- Local mailboxes: POP3 logins and delivery targets.
CREATE TABLE mailboxes (
  id            INTEGER PRIMARY KEY,
  domain_id     INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
  address       TEXT    NOT NULL COLLATE NOCASE UNIQUE,  -- local@domain, domain lowercase
  password_hash TEXT    NOT NULL,                         -- crypt(3): $y$, $6$ or $2b$
  created_at    INTEGER NOT NULL
);
CREATE INDEX mailboxes_by_domain ON mailboxes(domain_id);

-- Aliases: mail for local_part@domain also goes to target. local_part '' is
-- the domain's catch-all (written @domain), used when nothing else matches.
CREATE TABLE aliases (
  id         INTEGER PRIMARY KEY,
  domain_id  INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
  local_part TEXT    NOT NULL COLLATE NOCASE,
  target     TEXT    NOT NULL COLLATE NOCASE,  -- a full address, local or not
  created_at INTEGER NOT NULL,
  UNIQUE (domain_id, local_part, target)
);

-- Message content, addressed by its SHA-256: stored once however many
-- mailboxes receive it (and however often it is received). The content
-- excludes trace headers, which belong to each delivery.
CREATE TABLE messages (
  id           INTEGER PRIMARY KEY,
  content_hash TEXT    NOT NULL UNIQUE,  -- 64 lowercase hex characters
  size         INTEGER NOT NULL CHECK (size >= 0),
  content      BLOB    NOT NULL,
  created_at   INTEGER NOT NULL
);

-- One row per message per mailbox.
CREATE TABLE deliveries (
  id           INTEGER PRIMARY KEY,
  mailbox_id   INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
  message_id   INTEGER NOT NULL REFERENCES messages(id),
  uidl         TEXT    NOT NULL,  -- hex SHA-256(lowercase address || "\n" || content_hash)
  reverse_path TEXT    NOT NULL,  -- '' for the null sender
  trace        BLOB    NOT NULL,  -- Return-Path and Received lines, prepended on retrieval
  size         INTEGER NOT NULL CHECK (size >= 0),  -- octets as served: trace + content
  status       INTEGER NOT NULL DEFAULT 0 CHECK (status IN (0, 1, 2)),  -- 0 fresh, 1 retrieved, 2 deleted
  received_at  INTEGER NOT NULL,
  -- The same content delivered to the same mailbox again is the same delivery:
  -- a transaction retried after a lost 250 does not duplicate mail.
  UNIQUE (mailbox_id, uidl)
);
-- A maildrop's listing (POP3 STAT/LIST/UIDL: status < 2, in id order) is one
-- range scan of this index without reading the table; mailctl's per-mailbox
-- listing (newest first) walks the same range backwards.
CREATE INDEX deliveries_maildrop ON deliveries(mailbox_id, id, status, size, uidl);
CREATE INDEX deliveries_by_message ON deliveries(message_id);

-- Status values only grow, so that merging two copies of a row keeps the higher one.
CREATE TRIGGER deliveries_status_only_grows
BEFORE UPDATE OF status ON deliveries
WHEN NEW.status < OLD.status
BEGIN
  SELECT RAISE(ABORT, 'a delivery status never goes back');
END;
