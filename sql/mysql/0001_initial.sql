-- maild store, MySQL/MariaDB schema version 1: the same tables as sql/sqlite/0001_initial.sql
-- (see docs/store.md). InnoDB for every table (crash-safe, row locks, foreign keys), utf8mb4.
--
-- Addresses compare case-insensitively in ASCII only, as SQLite's NOCASE does: no MySQL collation
-- is that on every supported server (utf8mb4_general_ci also equates é and e). So each address
-- column keeps the address as given (utf8mb4_bin), and a *_key twin holds it lowercased (ASCII)
-- by maild; lookups and UNIQUE keys use the twin.
--
-- DDL commits by itself in MySQL, so a migration cannot be one transaction: every statement here
-- can run again (IF NOT EXISTS, DROP before CREATE), and a migration that stopped half-way is
-- completed by running `mailctl db migrate` again.

-- Domains we receive mail for.
CREATE TABLE IF NOT EXISTS domains (
  id         BIGINT       NOT NULL AUTO_INCREMENT,
  name       VARCHAR(255) NOT NULL,  -- stored lowercase (maild folds it): its own key
  created_at BIGINT       NOT NULL,  -- unix seconds
  PRIMARY KEY (id),
  UNIQUE KEY domains_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Local mailboxes: POP3 logins and delivery targets.
CREATE TABLE IF NOT EXISTS mailboxes (
  id            BIGINT          NOT NULL AUTO_INCREMENT,
  domain_id     BIGINT          NOT NULL,
  address       VARCHAR(320)    NOT NULL,  -- local@domain as given, domain lowercase
  address_key   VARBINARY(1280) NOT NULL,  -- the same, lowercased: what lookups compare
  password_hash VARCHAR(255)    NOT NULL,  -- crypt(3): $y$, $6$ or $2b$
  created_at    BIGINT          NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY mailboxes_address (address_key),
  KEY mailboxes_by_domain (domain_id),
  CONSTRAINT mailboxes_domain FOREIGN KEY (domain_id) REFERENCES domains (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Aliases: mail for local_part@domain also goes to target. local_part '' is
-- the domain's catch-all (written @domain), used when nothing else matches.
CREATE TABLE IF NOT EXISTS aliases (
  id         BIGINT          NOT NULL AUTO_INCREMENT,
  domain_id  BIGINT          NOT NULL,
  local_part VARCHAR(255)    NOT NULL,
  local_key  VARBINARY(1020) NOT NULL,  -- local_part lowercased
  target     VARCHAR(320)    NOT NULL,  -- a full address, local or not
  target_key VARBINARY(1280) NOT NULL,  -- target lowercased
  created_at BIGINT          NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY aliases_source_target (domain_id, local_key, target_key),
  CONSTRAINT aliases_domain FOREIGN KEY (domain_id) REFERENCES domains (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Message content, addressed by its SHA-256: stored once however many
-- mailboxes receive it (and however often it is received). The content
-- excludes trace headers, which belong to each delivery.
CREATE TABLE IF NOT EXISTS messages (
  id           BIGINT   NOT NULL AUTO_INCREMENT,
  content_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,  -- lowercase hex
  size         BIGINT   NOT NULL CHECK (size >= 0),
  content      LONGBLOB NOT NULL,
  created_at   BIGINT   NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY messages_content_hash (content_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per message per mailbox.
CREATE TABLE IF NOT EXISTS deliveries (
  id           BIGINT       NOT NULL AUTO_INCREMENT,
  mailbox_id   BIGINT       NOT NULL,
  message_id   BIGINT       NOT NULL,
  uidl         CHAR(64)     CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                            -- hex SHA-256(lowercase address || "\n" || content_hash)
  reverse_path VARCHAR(320) NOT NULL,  -- '' for the null sender
  trace        MEDIUMBLOB   NOT NULL,  -- Return-Path and Received lines, prepended on retrieval
  size         BIGINT       NOT NULL CHECK (size >= 0),  -- octets as served: trace + content
  status       TINYINT      NOT NULL DEFAULT 0 CHECK (status IN (0, 1, 2)),
                            -- 0 fresh, 1 retrieved, 2 deleted
  received_at  BIGINT       NOT NULL,
  PRIMARY KEY (id),
  -- The same content delivered to the same mailbox again is the same delivery:
  -- a transaction retried after a lost 250 does not duplicate mail.
  UNIQUE KEY deliveries_mailbox_uidl (mailbox_id, uidl),
  -- A maildrop's listing (POP3 STAT/LIST/UIDL: status < 2, in id order) is one
  -- range of this index without reading the table; mailctl's per-mailbox
  -- listing (newest first) walks the same range backwards.
  KEY deliveries_maildrop (mailbox_id, id, status, size, uidl),
  KEY deliveries_by_message (message_id),
  CONSTRAINT deliveries_mailbox FOREIGN KEY (mailbox_id) REFERENCES mailboxes (id)
    ON DELETE CASCADE,
  CONSTRAINT deliveries_message FOREIGN KEY (message_id) REFERENCES messages (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Status values only grow, so that merging two copies of a row keeps the higher one.
-- (With binary logging on, creating a trigger needs SUPER, or log_bin_trust_function_creators=1.)
DROP TRIGGER IF EXISTS deliveries_status_only_grows;
DELIMITER //
CREATE TRIGGER deliveries_status_only_grows
BEFORE UPDATE ON deliveries FOR EACH ROW
BEGIN
  IF NEW.status < OLD.status THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a delivery status never goes back';
  END IF;
END//
DELIMITER ;
