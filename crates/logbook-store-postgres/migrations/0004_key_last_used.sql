-- When each API key was last used, in Unix microseconds like every other time. The server keeps
-- the latest use in memory and writes it here at most once a minute per key (and when it stops),
-- so authenticating a request never writes to the database.
ALTER TABLE api_keys ADD COLUMN last_used_at bigint;
