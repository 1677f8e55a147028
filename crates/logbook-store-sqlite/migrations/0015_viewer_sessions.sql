-- Viewer sessions of the embedded view (issue 15). A platform's backend asks for one; its
-- one-time ticket opens it once before `open_by`, and from then on its token (kept only as
-- `session_hash`) carries the person's requests until `expires_at`. Ended sessions are deleted
-- when new ones are made.
CREATE TABLE viewer_sessions (
    viewer_session_id TEXT PRIMARY KEY,
    ticket_hash BLOB NOT NULL UNIQUE,
    session_hash BLOB UNIQUE,
    account_row INTEGER NOT NULL REFERENCES accounts (account_row),
    person_id TEXT NOT NULL,
    person_name TEXT,
    person_email TEXT,
    scope TEXT NOT NULL,
    fixed_query TEXT,
    may_export INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    open_by INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    opened_at INTEGER,
    opened_ip TEXT,
    opened_user_agent TEXT
);
CREATE INDEX viewer_sessions_by_end ON viewer_sessions (expires_at);

-- An account's own look of the embedded view and the origins allowed to frame it (a JSON
-- array); what it leaves NULL comes from the instance's `[embed]` settings.
CREATE TABLE embed_looks (
    account_row INTEGER PRIMARY KEY REFERENCES accounts (account_row),
    frame_ancestors TEXT NOT NULL,
    product_name TEXT,
    accent_colour TEXT,
    theme TEXT,
    logo_url TEXT
);
