-- "Needs attention" (issue 6): what the attention workers found in each account's log, who
-- dismissed it, and how far each account has been read, with the detectors' state there.
-- Several nodes run a worker: progress is saved only if `next_seq` is still what the worker
-- started from (compare-and-set), and a finding is unique by what it is in the log, so no
-- episode is stored twice.

CREATE TABLE attention_progress (
    account_row bigint PRIMARY KEY REFERENCES accounts (account_row),
    next_seq bigint NOT NULL,
    state bytea NOT NULL
);

CREATE TABLE attention_findings (
    finding_id bigserial PRIMARY KEY,
    account_row bigint NOT NULL REFERENCES accounts (account_row),
    kind text NOT NULL,
    subject_kind text NOT NULL CHECK (subject_kind IN ('actor', 'ip')),
    subject text COLLATE "C" NOT NULL,
    first_seq bigint NOT NULL,
    last_seq bigint NOT NULL,
    first_at bigint NOT NULL, -- microseconds since the Unix epoch, like every time
    last_at bigint NOT NULL,
    title text NOT NULL,
    evidence_query text NOT NULL,
    detected_at bigint NOT NULL,
    dismissed_by text,
    dismissed_at bigint,
    UNIQUE (account_row, kind, subject_kind, subject, first_seq)
);
CREATE INDEX attention_findings_newest ON attention_findings (account_row, detected_at);
