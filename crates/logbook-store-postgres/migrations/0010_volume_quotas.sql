-- Per-account stored-volume quotas (issue 7), set with `logbook limits set --events-per-day N
-- --stored-bytes N`; NULL means no quota. The writers enforce them against
-- `account_volume_usage` in the transaction that stores the events, under the account row locks.
ALTER TABLE account_limits ADD COLUMN events_per_day bigint;
ALTER TABLE account_limits ADD COLUMN stored_bytes bigint;

-- One row per account, kept by the writers for every account (quota or not), so a quota set later
-- starts from the true volume. `usage_day` is days since 1970-01-01 UTC of the newest counted
-- event's received_at; `stored_bytes` counts each stored event's JSON body in bytes.
CREATE TABLE account_volume_usage (
    account_row bigint PRIMARY KEY REFERENCES accounts (account_row),
    usage_day bigint NOT NULL,
    events_on_usage_day bigint NOT NULL,
    stored_bytes bigint NOT NULL
);

-- The bytes already stored. (Events per day start counting at the upgrade.) The row-level
-- policies would hide every event from this statement when the migrating role is neither
-- superuser nor BYPASSRLS.
SET LOCAL logbook.all_accounts = 'on';
INSERT INTO account_volume_usage (account_row, usage_day, events_on_usage_day, stored_bytes)
SELECT account_row, 0, 0, sum(octet_length(body)) FROM events GROUP BY account_row;
