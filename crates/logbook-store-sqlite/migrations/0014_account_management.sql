-- Account management over HTTP (issue 16). An account's display name (NULL: none; the name
-- stays the identifier) and whether it takes events (`ingest_enabled`: a disabled account's
-- ingest is refused, its reads keep working). API keys gain the `admin` scope: with an account
-- it manages that account, without one (a platform key) every account.
ALTER TABLE accounts ADD COLUMN display_name TEXT;
ALTER TABLE accounts ADD COLUMN ingest_enabled INTEGER NOT NULL DEFAULT 1;
ALTER TABLE api_keys ADD COLUMN scope_admin INTEGER NOT NULL DEFAULT 0;
