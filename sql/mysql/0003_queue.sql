-- maild store, MySQL/MariaDB schema version 3: the outbound queue, as in
-- sql/sqlite/0003_queue.sql (see docs/store.md). A queued message is its envelope
-- (queue_messages) apart from its per-recipient state (queue_recipients); the content is
-- the shared, content-addressed messages row. What other servers and clients sent as is
-- (ENVID, ORCPT, replies) is kept in binary columns: strict utf8mb4 would refuse stray octets.

-- A message accepted for other servers: what every attempt sends, and to whom it reports.
CREATE TABLE IF NOT EXISTS queue_messages (
  id             BIGINT       NOT NULL AUTO_INCREMENT,
  message_id     BIGINT       NOT NULL,
  reverse_path   VARCHAR(320) NOT NULL,  -- '' for the null sender: never owed a notice
  envid          VARBINARY(1000) NOT NULL DEFAULT '',  -- RFC 3461 ENVID, decoded: any octets
  ret            TINYINT      NOT NULL DEFAULT 0 CHECK (ret IN (0, 1, 2)),
                              -- 0 unspecified, 1 full, 2 headers
  smtputf8       TINYINT      NOT NULL DEFAULT 0 CHECK (smtputf8 IN (0, 1)),
  eight_bit      TINYINT      NOT NULL DEFAULT 0 CHECK (eight_bit IN (0, 1)),  -- BODY=8BITMIME
  outbound_trace MEDIUMBLOB   NOT NULL,  -- the Received line sent onward, before the content
  size           BIGINT       NOT NULL CHECK (size >= 0),  -- octets sent: outbound_trace + content
  queued_at      BIGINT       NOT NULL,  -- unix seconds
  PRIMARY KEY (id),
  -- A content clean-up (and the foreign key check when a messages row goes) finds entries here.
  KEY queue_messages_by_message (message_id),
  CONSTRAINT queue_messages_message FOREIGN KEY (message_id) REFERENCES messages (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One recipient of a queued message, with its own state, retries and lease.
CREATE TABLE IF NOT EXISTS queue_recipients (
  id            BIGINT          NOT NULL AUTO_INCREMENT,
  queue_id      BIGINT          NOT NULL,
  address       VARCHAR(320)    NOT NULL,  -- local@domain, domain lowercase
  address_key   VARBINARY(1280) NOT NULL,  -- the same, lowercased: what makes it unique
  domain        VARCHAR(255)    NOT NULL,  -- lowercase: what jobs group by
  notify        INT             NOT NULL DEFAULT 0,   -- RFC 3461 NOTIFY bits; 0 = not given
  orcpt         VARBINARY(1000) NOT NULL DEFAULT '',  -- ORCPT as received; '' when absent
  state         TINYINT         NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2)),
                                -- 0 queued, 1 delivered, 2 failed
  attempts      INT             NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt  BIGINT          NOT NULL,  -- unix seconds
  last_reply    BLOB            NOT NULL,  -- a remote reply as received: any octets
  remote_host   VARCHAR(255)    NOT NULL DEFAULT '',
  -- The lease: held by lease_owner (unique across nodes) through the whole second
  -- lease_expires, then free for anyone; NULL when nobody holds it. An expired lease
  -- keeps its owner until another takes it, so a late result can still be recorded.
  lease_owner   VARCHAR(255)    NULL,
  lease_expires BIGINT          NOT NULL DEFAULT 0,
  notice_owed   TINYINT         NOT NULL DEFAULT 0 CHECK (notice_owed IN (0, 1)),
  delay_warned  TINYINT         NOT NULL DEFAULT 0 CHECK (delay_warned IN (0, 1)),
  PRIMARY KEY (id),
  -- A recipient is queued once per message, whatever its case. This key also
  -- answers "the recipients of a message" (queue_id is its prefix).
  UNIQUE KEY queue_recipients_address (queue_id, address_key),
  -- claim() and next_due() look only at queued recipients: a range of state = 0 AND
  -- next_attempt <= now here is exactly the due ones, however many delivered, failed or
  -- deferred rows the queue holds (MySQL has no partial index; the state comes first instead).
  KEY queue_recipients_due (state, next_attempt, lease_expires),
  -- notices_owed() starts from the few recipients that owe a notice, in message order.
  KEY queue_recipients_owed (notice_owed, queue_id),
  CONSTRAINT queue_recipients_message FOREIGN KEY (queue_id) REFERENCES queue_messages (id)
    ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A recipient's state only grows (queued -> delivered or failed), like a delivery's status.
DROP TRIGGER IF EXISTS queue_recipients_state_only_grows;
DELIMITER //
CREATE TRIGGER queue_recipients_state_only_grows
BEFORE UPDATE ON queue_recipients FOR EACH ROW
BEGIN
  IF NEW.state < OLD.state THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a queued recipient''s state never goes back';
  END IF;
END//
DELIMITER ;
