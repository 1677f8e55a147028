-- Migration 0018 filled `actor_countries` from the located events stored before it without
-- `logbook.all_accounts`: when the migrating role was the owner the README recommends (neither
-- superuser nor BYPASSRLS), the row-level policies hid every event, the history started empty,
-- and an actor's next success from a country it had used before the upgrade was not history, so
-- its first success from yet another country was not flagged new. 0018 now sets it; a database it
-- already migrated is filled here. On a database 0018 filled, nothing changes: each row keeps the
-- earlier of its two instants. Events whose place was removed with personal data have no
-- `country_code` and add nothing back.
SET LOCAL logbook.all_accounts = 'on';
INSERT INTO actor_countries (account_row, actor_id, country_code, first_seen_at)
    SELECT account_row, actor_id, country_code, min(created_at) FROM events
    WHERE country_code IS NOT NULL AND actor_id IS NOT NULL AND outcome IS DISTINCT FROM 1
    GROUP BY account_row, actor_id, country_code
ON CONFLICT (account_row, actor_id, country_code)
DO UPDATE SET first_seen_at = least(actor_countries.first_seen_at, excluded.first_seen_at);
