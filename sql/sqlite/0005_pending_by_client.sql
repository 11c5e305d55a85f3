-- maild store, SQLite schema version 5: pending retrievals counted per client
-- address. SOURCE refuses with 452 once the address that announced them has
-- [reverse] max_pending_per_client retrievals pending (SOURCE-GET.md 6), so
-- that forged SOURCEs from one client cannot crowd out genuine ones.
CREATE INDEX pending_retrievals_by_client ON pending_retrievals(client_address, state);
