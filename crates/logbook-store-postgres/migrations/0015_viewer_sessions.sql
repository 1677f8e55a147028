-- Viewer sessions of the embedded view (issue 15). A platform's backend asks for one; its
-- one-time ticket opens it once before `open_by`, and from then on its token (kept only as
-- `session_hash`) carries the person's requests until `expires_at`. Ended sessions are deleted
-- when new ones are made.
CREATE TABLE viewer_sessions (
    viewer_session_id text PRIMARY KEY,
    ticket_hash bytea NOT NULL UNIQUE,
    session_hash bytea UNIQUE,
    account_row bigint NOT NULL REFERENCES accounts (account_row),
    person_id text NOT NULL,
    person_name text,
    person_email text,
    scope text NOT NULL,
    fixed_query text,
    may_export boolean NOT NULL,
    created_by text NOT NULL,
    created_at bigint NOT NULL,
    open_by bigint NOT NULL,
    expires_at bigint NOT NULL,
    opened_at bigint,
    opened_ip text,
    opened_user_agent text
);
CREATE INDEX viewer_sessions_by_end ON viewer_sessions (expires_at);

-- An account's own look of the embedded view and the origins allowed to frame it (a JSON
-- array); what it leaves NULL comes from the instance's `[embed]` settings.
CREATE TABLE embed_looks (
    account_row bigint PRIMARY KEY REFERENCES accounts (account_row),
    frame_ancestors text NOT NULL,
    product_name text,
    accent_colour text,
    theme text,
    logo_url text
);
