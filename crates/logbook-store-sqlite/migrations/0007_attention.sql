-- "Needs attention" (issue 6): what the attention worker found in each account's log, who
-- dismissed it, and how far the worker has read each account with the detectors' state there.

-- One row per account the worker has read: the next seq to read and the detectors' state after
-- every earlier event (`AttentionState::to_bytes`). Saved with the findings it led to, in one
-- transaction, and only if `next_seq` is still what the worker started from.
CREATE TABLE attention_progress (
    account_row INTEGER PRIMARY KEY REFERENCES accounts (account_row),
    next_seq INTEGER NOT NULL,
    state BLOB NOT NULL
);

CREATE TABLE attention_findings (
    finding_id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_row INTEGER NOT NULL REFERENCES accounts (account_row),
    kind TEXT NOT NULL,
    subject_kind TEXT NOT NULL, -- 'actor' or 'ip'
    subject TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    first_at INTEGER NOT NULL, -- microseconds since the Unix epoch, like every time
    last_at INTEGER NOT NULL,
    title TEXT NOT NULL,
    evidence_query TEXT NOT NULL,
    detected_at INTEGER NOT NULL,
    dismissed_by TEXT,
    dismissed_at INTEGER,
    -- An episode is named by what it is in the log, so reading the log twice stores it once.
    UNIQUE (account_row, kind, subject_kind, subject, first_seq)
);
-- The page lists an account's newest findings.
CREATE INDEX attention_findings_newest ON attention_findings (account_row, detected_at);
