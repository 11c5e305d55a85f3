-- maild store, MySQL/MariaDB schema version 4: SOURCE/GET reverse delivery, per-domain policy
-- and shared counters, as in sql/sqlite/0004_reverse.sql (see docs/source-get.md and
-- docs/store.md). Like the queue, what clients and servers sent as is (HELO, replies) is kept in
-- binary columns; tokens are ASCII.

-- D side: a SOURCE we accepted and have still to fetch by GET from the MX of the sender's
-- domain. Retrieval workers on any node take due rows by lease (like the outbound queue), so two
-- nodes never fetch one token at once.
CREATE TABLE IF NOT EXISTS pending_retrievals (
  id             BIGINT       NOT NULL AUTO_INCREMENT,
  token          CHAR(32)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                              -- 32 lowercase hex: a secret, never logged whole
  reverse_path   VARCHAR(320) NOT NULL,  -- never '' (bounces travel by DATA)
  sender_domain  VARCHAR(255) NOT NULL,  -- lowercase: retrievals are grouped by it
  declared_size  BIGINT       NULL CHECK (declared_size >= 0),  -- SIZE= of MAIL; NULL: not declared
  client_address VARCHAR(255) NOT NULL,  -- the client that sent SOURCE
  helo           VARBINARY(1000) NOT NULL,  -- as the client sent it: any octets
  trace          MEDIUMBLOB   NOT NULL,  -- Return-Path and Received of the SOURCE transaction
  received_at    BIGINT       NOT NULL,  -- unix seconds
  state          TINYINT      NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2)),
                              -- 0 pending, 1 fetched, 2 failed
  attempts       INT          NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt   BIGINT       NOT NULL,
  last_error     BLOB         NOT NULL,  -- a remote reply as received, or our reason
  -- The lease: held by lease_owner (unique across nodes) through the whole second
  -- lease_expires; '' when nobody holds it.
  lease_owner    VARCHAR(255) NOT NULL DEFAULT '',
  lease_expires  BIGINT       NOT NULL DEFAULT 0,
  finished_at    BIGINT       NULL,  -- when it was fetched or failed
  PRIMARY KEY (id),
  UNIQUE KEY pending_retrievals_token (token),
  -- claim_retrievals() and next_retrieval_due() read the pending, due rows: a range of
  -- state = 0 AND next_attempt <= now (no partial index in MySQL: the state comes first).
  KEY pending_retrievals_due (state, next_attempt, lease_expires),
  -- add_retrieval() counts a sender domain's pending retrievals.
  KEY pending_retrievals_by_domain (sender_domain, state)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The recipients a SOURCE was accepted for: one row per recipient and local mailbox it resolved
-- to at RCPT time (an alias may give several). A mailbox deleted meanwhile drops out.
CREATE TABLE IF NOT EXISTS pending_recipients (
  id           BIGINT       NOT NULL AUTO_INCREMENT,
  retrieval_id BIGINT       NOT NULL,
  address      VARCHAR(320) NOT NULL,
  mailbox_id   BIGINT       NOT NULL,
  PRIMARY KEY (id),
  KEY pending_recipients_by_retrieval (retrieval_id, id),
  KEY pending_recipients_by_mailbox (mailbox_id),
  CONSTRAINT pending_recipients_retrieval FOREIGN KEY (retrieval_id)
    REFERENCES pending_retrievals (id) ON DELETE CASCADE,
  CONSTRAINT pending_recipients_mailbox FOREIGN KEY (mailbox_id) REFERENCES mailboxes (id)
    ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

DROP TRIGGER IF EXISTS pending_retrievals_state_only_grows;
DELIMITER //
CREATE TRIGGER pending_retrievals_state_only_grows
BEFORE UPDATE ON pending_retrievals FOR EACH ROW
BEGIN
  IF NEW.state < OLD.state THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a retrieval state never goes back';
  END IF;
END//
DELIMITER ;

-- O side: a message we offered by SOURCE, waiting to be fetched by GET. The content is the
-- content-addressed messages row; the trace is the one sent onward. A pickup carries what a
-- delivery status notice needs when it is never fetched. States: 0 offered (created before
-- SOURCE was sent; the queue still owns the message), 1 awaiting (SOURCE was accepted; the duty
-- to deliver or bounce is here), 2 transferred (fetched at least once), 3 expired (never fetched
-- in time; the sender was notified), 4 purged (the content reference and trace are gone; the
-- token stays known).
CREATE TABLE IF NOT EXISTS pickups (
  id               BIGINT       NOT NULL AUTO_INCREMENT,
  token            CHAR(32)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  message_id       BIGINT       NULL,  -- NULL once purged
  outbound_trace   MEDIUMBLOB   NOT NULL,  -- '' once purged
  size             BIGINT       NOT NULL CHECK (size >= 0),  -- octets served: trace + content
  reverse_path     VARCHAR(320) NOT NULL,
  envid            VARBINARY(1000) NOT NULL DEFAULT '',  -- RFC 3461 ENVID, decoded: any octets
  ret              TINYINT      NOT NULL DEFAULT 0 CHECK (ret IN (0, 1, 2)),
  smtputf8         TINYINT      NOT NULL DEFAULT 0 CHECK (smtputf8 IN (0, 1)),
  arrival          BIGINT       NOT NULL,  -- when we accepted the message (for the notice)
  peer             VARCHAR(320) NOT NULL DEFAULT '',  -- the server that took the SOURCE
  created_at       BIGINT       NOT NULL,
  confirmed_at     BIGINT       NULL,  -- when SOURCE was accepted (state 1)
  first_fetched_at BIGINT       NULL,
  fetch_count      BIGINT       NOT NULL DEFAULT 0,
  state            TINYINT      NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 4),
  PRIMARY KEY (id),
  UNIQUE KEY pickups_token (token),
  -- expired_pickups() and the clean-up walk a state's rows in confirmation order.
  KEY pickups_by_state (state, confirmed_at),
  -- A content clean-up (and the foreign key check when a messages row goes) finds pickups here.
  KEY pickups_by_message (message_id),
  CONSTRAINT pickups_message FOREIGN KEY (message_id) REFERENCES messages (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Who a pickup is for; GET is answered only to an MX of one of these domains.
CREATE TABLE IF NOT EXISTS pickup_recipients (
  id        BIGINT       NOT NULL AUTO_INCREMENT,
  pickup_id BIGINT       NOT NULL,
  address   VARCHAR(320) NOT NULL,
  domain    VARCHAR(255) NOT NULL,  -- lowercase
  notify    INT          NOT NULL DEFAULT 0,   -- RFC 3461 NOTIFY bits, 0 = not given
  orcpt     VARBINARY(1000) NOT NULL DEFAULT '',  -- ORCPT as received; '' when absent
  PRIMARY KEY (id),
  KEY pickup_recipients_by_pickup (pickup_id, id),
  CONSTRAINT pickup_recipients_pickup FOREIGN KEY (pickup_id) REFERENCES pickups (id)
    ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

DROP TRIGGER IF EXISTS pickups_state_only_grows;
DELIMITER //
CREATE TRIGGER pickups_state_only_grows
BEFORE UPDATE ON pickups FOR EACH ROW
BEGIN
  IF NEW.state < OLD.state THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a pickup state never goes back';
  END IF;
END//
DELIMITER ;

-- Per-domain policy, changed with mailctl policy and read live. NULL means the mail.conf
-- default. unverified_policy is for our own domains (mail that reaches them by plain DATA);
-- tls_policy overrides [delivery] tls for mail sent to the domain, ours or not, so the row is
-- keyed by the name rather than by a foreign key to domains.
CREATE TABLE IF NOT EXISTS domain_policies (
  domain            VARCHAR(255) NOT NULL,  -- lowercase (maild folds it): its own key
  unverified_policy VARCHAR(8)   NULL CHECK (unverified_policy IN ('accept', 'tag', 'reject')),
  tls_policy        VARCHAR(8)   NULL CHECK (tls_policy IN ('may', 'encrypt')),
  updated_at        BIGINT       NOT NULL,
  PRIMARY KEY (domain)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A domain that is no longer ours keeps no policy for mail to it; its tls_policy stays.
DROP TRIGGER IF EXISTS domains_drop_unverified_policy;
DELIMITER //
CREATE TRIGGER domains_drop_unverified_policy
AFTER DELETE ON domains FOR EACH ROW
BEGIN
  UPDATE domain_policies SET unverified_policy = NULL WHERE domain = OLD.name;
  DELETE FROM domain_policies
   WHERE domain = OLD.name AND unverified_policy IS NULL AND tls_policy IS NULL;
END//
DELIMITER ;

-- Set when the message came by a successful GET (origin verified). MySQL 8 has no
-- ADD COLUMN IF NOT EXISTS, so the column is added only when information_schema lacks it: the
-- statement can run again, as every other one here.
SET @maild_add_verified = IF(
  EXISTS (SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()
          AND TABLE_NAME = 'deliveries' AND COLUMN_NAME = 'verified'),
  'DO 0',
  'ALTER TABLE deliveries ADD COLUMN verified TINYINT NOT NULL DEFAULT 0 CHECK (verified IN (0, 1))');
PREPARE maild_add_verified FROM @maild_add_verified;
EXECUTE maild_add_verified;
DEALLOCATE PREPARE maild_add_verified;

-- Event counters for mailctl stats, in the store so that every node adds to the same numbers;
-- each is incremented in the transaction that did the thing.
CREATE TABLE IF NOT EXISTS counters (
  name  VARCHAR(255) NOT NULL,
  value BIGINT       NOT NULL DEFAULT 0,
  PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
