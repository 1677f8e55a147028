-- Personal data by age and on request (issue 18). An account's own personal-data period (NULL:
-- the instance default), whether aging keeps the /24 or /48 of a removed address (NULL: the
-- instance default), the metadata members it declares personal (a JSON array of names), and how
-- far aging has gone: every event below personal_aged_below_seq had its personal fields removed.
-- Columns only: nothing rewrites existing events at start-up.
ALTER TABLE account_retention ADD COLUMN personal_data_days bigint;
ALTER TABLE account_retention ADD COLUMN personal_keep_network bigint; -- 0 or 1, read like the SQLite column
ALTER TABLE account_retention ADD COLUMN personal_metadata_fields text;
ALTER TABLE account_retention ADD COLUMN personal_aged_below_seq bigint NOT NULL DEFAULT 0;
