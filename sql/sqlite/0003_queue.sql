-- maild store, SQLite schema version 3: the outbound queue (see docs/store.md).
-- A queued message is its envelope (queue_messages) apart from its per-recipient
-- state (queue_recipients); the content is the shared, content-addressed messages row.

-- A message accepted for other servers: what every attempt sends, and to whom it reports.
CREATE TABLE queue_messages (
  id             INTEGER PRIMARY KEY,
  message_id     INTEGER NOT NULL REFERENCES messages(id),
  reverse_path   TEXT    NOT NULL,  -- '' for the null sender: never owed a notice
  envid          TEXT    NOT NULL DEFAULT '',  -- RFC 3461 ENVID, decoded
  ret            INTEGER NOT NULL DEFAULT 0 CHECK (ret IN (0, 1, 2)),  -- 0 unspecified, 1 full, 2 headers
  smtputf8       INTEGER NOT NULL DEFAULT 0 CHECK (smtputf8 IN (0, 1)),
  eight_bit      INTEGER NOT NULL DEFAULT 0 CHECK (eight_bit IN (0, 1)),  -- BODY=8BITMIME
  outbound_trace BLOB    NOT NULL,  -- the Received line sent onward, before the content
  size           INTEGER NOT NULL CHECK (size >= 0),  -- octets sent: outbound_trace + content
  queued_at      INTEGER NOT NULL   -- unix seconds
);
-- A content clean-up (and the foreign key check when a messages row goes) finds queue entries here.
CREATE INDEX queue_messages_by_message ON queue_messages(message_id);

-- One recipient of a queued message, with its own state, retries and lease.
CREATE TABLE queue_recipients (
  id            INTEGER PRIMARY KEY,
  queue_id      INTEGER NOT NULL REFERENCES queue_messages(id) ON DELETE CASCADE,
  address       TEXT    NOT NULL COLLATE NOCASE,  -- local@domain, domain lowercase
  domain        TEXT    NOT NULL,                 -- lowercase: what jobs group by
  notify        INTEGER NOT NULL DEFAULT 0,       -- RFC 3461 NOTIFY bits; 0 = not given
  orcpt         TEXT    NOT NULL DEFAULT '',      -- ORCPT as received; '' when absent
  state         INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2)),  -- 0 queued, 1 delivered, 2 failed
  attempts      INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt  INTEGER NOT NULL,                 -- unix seconds
  last_reply    TEXT    NOT NULL DEFAULT '',
  remote_host   TEXT    NOT NULL DEFAULT '',
  -- The lease: held by lease_owner (unique across nodes) through the whole second
  -- lease_expires, then free for anyone; NULL when nobody holds it. An expired lease
  -- keeps its owner until another takes it, so a late result can still be recorded.
  lease_owner   TEXT,
  lease_expires INTEGER NOT NULL DEFAULT 0,
  notice_owed   INTEGER NOT NULL DEFAULT 0 CHECK (notice_owed IN (0, 1)),  -- a DSN is still to be sent
  delay_warned  INTEGER NOT NULL DEFAULT 0 CHECK (delay_warned IN (0, 1)),
  -- A recipient is queued once per message, whatever its case. This index also
  -- answers "the recipients of a message" (queue_id is its prefix).
  UNIQUE (queue_id, address)
);
-- claim() and next_due() look only at queued recipients (state 0): a range of
-- next_attempt <= now in this partial index is exactly the due ones, however many
-- delivered, failed or deferred rows the queue holds; the lease columns are in it so
-- that live leases are skipped without reading the table. next_due() is its first entry.
CREATE INDEX queue_recipients_due
  ON queue_recipients(next_attempt, queue_id, lease_owner, lease_expires) WHERE state = 0;
-- notices_owed() starts from the few recipients that owe a notice, in message order.
-- (list() walks queue_messages in id order and finds each one's recipients through
-- the UNIQUE index above: an administrator's listing needs no index of its own.)
CREATE INDEX queue_recipients_owed ON queue_recipients(queue_id) WHERE notice_owed = 1;

-- A recipient's state only grows (queued -> delivered or failed), like a delivery's status.
CREATE TRIGGER queue_recipients_state_only_grows
BEFORE UPDATE OF state ON queue_recipients
WHEN NEW.state < OLD.state
BEGIN
  SELECT RAISE(ABORT, 'a queued recipient''s state never goes back');
END;
