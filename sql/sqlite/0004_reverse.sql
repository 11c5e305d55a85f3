-- maild store, SQLite schema version 4: SOURCE/GET reverse delivery (see
-- docs/source-get.md and docs/store.md), per-domain policy and shared counters.

-- D side: a SOURCE we accepted and have still to fetch by GET from the MX of
-- the sender's domain. Retrieval workers on any node take due rows by lease
-- (like the outbound queue), so two nodes never fetch one token at once.
CREATE TABLE pending_retrievals (
  id             INTEGER PRIMARY KEY,
  token          TEXT    NOT NULL UNIQUE,  -- 32 lowercase hex: a secret, never logged whole
  reverse_path   TEXT    NOT NULL,         -- never '' (bounces travel by DATA)
  sender_domain  TEXT    NOT NULL COLLATE NOCASE,  -- lowercase: retrievals are grouped by it
  declared_size  INTEGER,                  -- SIZE= of MAIL; NULL when not declared
  client_address TEXT    NOT NULL,         -- the client that sent SOURCE
  helo           TEXT    NOT NULL,
  trace          BLOB    NOT NULL,         -- Return-Path and Received of the SOURCE transaction
  received_at    INTEGER NOT NULL,         -- unix seconds
  state          INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2)),  -- 0 pending, 1 fetched, 2 failed
  attempts       INTEGER NOT NULL DEFAULT 0,
  next_attempt   INTEGER NOT NULL,
  last_error     TEXT    NOT NULL DEFAULT '',
  lease_owner    TEXT    NOT NULL DEFAULT '',  -- '' when not leased
  lease_expires  INTEGER NOT NULL DEFAULT 0,
  finished_at    INTEGER                   -- when it was fetched or failed
);
CREATE INDEX pending_retrievals_due ON pending_retrievals(state, next_attempt);
CREATE INDEX pending_retrievals_by_domain ON pending_retrievals(sender_domain, state);

-- The recipients a SOURCE was accepted for: one row per recipient and local
-- mailbox it resolved to at RCPT time (an alias may give several).
CREATE TABLE pending_recipients (
  id           INTEGER PRIMARY KEY,
  retrieval_id INTEGER NOT NULL REFERENCES pending_retrievals(id) ON DELETE CASCADE,
  address      TEXT    NOT NULL COLLATE NOCASE,
  mailbox_id   INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE
);
CREATE INDEX pending_recipients_by_retrieval ON pending_recipients(retrieval_id);

CREATE TRIGGER pending_retrievals_state_only_grows
BEFORE UPDATE OF state ON pending_retrievals
WHEN NEW.state < OLD.state
BEGIN
  SELECT RAISE(ABORT, 'a retrieval state never goes back');
END;

-- O side: a message we offered by SOURCE, waiting to be fetched by GET. The
-- content is the content-addressed messages row; the trace is the one sent
-- onward. A pickup carries what a delivery status notice needs when it is
-- never fetched. States: 0 offered (created before SOURCE was sent; the queue
-- still owns the message), 1 awaiting (SOURCE was accepted; the duty to
-- deliver or bounce is here), 2 transferred (fetched at least once), 3
-- expired (never fetched in time; the sender was notified), 4 purged (the
-- content reference and trace are gone; the token stays known).
CREATE TABLE pickups (
  id               INTEGER PRIMARY KEY,
  token            TEXT    NOT NULL UNIQUE,
  message_id       INTEGER REFERENCES messages(id),  -- NULL once purged
  outbound_trace   BLOB    NOT NULL,                  -- '' once purged
  size             INTEGER NOT NULL CHECK (size >= 0),  -- octets served: trace + content
  reverse_path     TEXT    NOT NULL,
  envid            TEXT    NOT NULL DEFAULT '',
  ret              INTEGER NOT NULL DEFAULT 0 CHECK (ret IN (0, 1, 2)),
  smtputf8         INTEGER NOT NULL DEFAULT 0 CHECK (smtputf8 IN (0, 1)),
  arrival          INTEGER NOT NULL,  -- when we accepted the message (for the notice)
  peer             TEXT    NOT NULL DEFAULT '',  -- the server that took the SOURCE
  created_at       INTEGER NOT NULL,
  confirmed_at     INTEGER,           -- when SOURCE was accepted (state 1)
  first_fetched_at INTEGER,
  fetch_count      INTEGER NOT NULL DEFAULT 0,
  state            INTEGER NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 4)
);
CREATE INDEX pickups_by_state ON pickups(state, confirmed_at);
CREATE INDEX pickups_by_message ON pickups(message_id);

-- Who a pickup is for; GET is answered only to an MX of one of these domains.
CREATE TABLE pickup_recipients (
  id        INTEGER PRIMARY KEY,
  pickup_id INTEGER NOT NULL REFERENCES pickups(id) ON DELETE CASCADE,
  address   TEXT    NOT NULL COLLATE NOCASE,
  domain    TEXT    NOT NULL COLLATE NOCASE,  -- lowercase
  notify    INTEGER NOT NULL DEFAULT 0,       -- RFC 3461 NOTIFY bits, 0 = not given
  orcpt     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX pickup_recipients_by_pickup ON pickup_recipients(pickup_id);

CREATE TRIGGER pickups_state_only_grows
BEFORE UPDATE OF state ON pickups
WHEN NEW.state < OLD.state
BEGIN
  SELECT RAISE(ABORT, 'a pickup state never goes back');
END;

-- Per-domain policy, changed with mailctl policy and read live. NULL means
-- the mail.conf default. unverified_policy is for our own domains (mail that
-- reaches them by plain DATA); tls_policy overrides [delivery] tls for mail
-- sent to the domain.
CREATE TABLE domain_policies (
  domain            TEXT    PRIMARY KEY COLLATE NOCASE,  -- lowercase
  unverified_policy TEXT    CHECK (unverified_policy IN ('accept', 'tag', 'reject')),
  tls_policy        TEXT    CHECK (tls_policy IN ('may', 'encrypt')),
  updated_at        INTEGER NOT NULL
);

-- A domain that is no longer ours keeps no policy for mail to it.
CREATE TRIGGER domains_drop_unverified_policy
AFTER DELETE ON domains
BEGIN
  UPDATE domain_policies SET unverified_policy = NULL WHERE domain = OLD.name;
  DELETE FROM domain_policies
   WHERE domain = OLD.name AND unverified_policy IS NULL AND tls_policy IS NULL;
END;

-- Set when the message came by a successful GET (origin verified).
ALTER TABLE deliveries ADD COLUMN verified INTEGER NOT NULL DEFAULT 0 CHECK (verified IN (0, 1));

-- Event counters for mailctl stats, in the store so that every node adds to
-- the same numbers; each is incremented in the transaction that did the thing.
CREATE TABLE counters (
  name  TEXT    PRIMARY KEY,
  value INTEGER NOT NULL DEFAULT 0
);
