-- Placeholder for schema version 3 (the outbound queue, merged from its own
-- branch). Migration numbers run without gaps; this file only keeps the
-- reverse branch's 0004 testable and is dropped when the queue's 0003 lands.
SELECT 1;
