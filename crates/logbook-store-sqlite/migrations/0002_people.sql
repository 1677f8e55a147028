-- People of an account and how they sign in (issue 3). Secrets are stored only as SHA-256
-- (session ids, invitation tokens, recovery codes) or Argon2id PHC strings (passwords).

CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    account_row INTEGER NOT NULL REFERENCES accounts (account_row),
    email TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'viewer', 'member')),
    password_hash TEXT NOT NULL,
    totp_secret BLOB,
    created_at INTEGER NOT NULL,
    UNIQUE (account_row, email)
);
-- Sign-in looks an email up across accounts.
CREATE INDEX users_by_email ON users (email);

CREATE TABLE sessions (
    session_hash BLOB PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    ip TEXT,
    user_agent TEXT,
    awaiting_second_factor INTEGER NOT NULL DEFAULT 0,
    revoked_at INTEGER
) WITHOUT ROWID;
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    code_hash BLOB NOT NULL,
    used_at INTEGER,
    PRIMARY KEY (user_id, code_hash)
) WITHOUT ROWID;

CREATE TABLE invitations (
    token_hash BLOB PRIMARY KEY,
    account_row INTEGER NOT NULL REFERENCES accounts (account_row),
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    invited_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    accepted_at INTEGER
) WITHOUT ROWID;

CREATE TABLE account_sign_in_settings (
    account_row INTEGER PRIMARY KEY REFERENCES accounts (account_row),
    requires_second_factor INTEGER NOT NULL DEFAULT 0
);
