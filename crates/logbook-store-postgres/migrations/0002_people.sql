-- People of an account and how they sign in. Secrets are stored only as SHA-256 (session ids,
-- invitation tokens, recovery codes) or Argon2id PHC strings (passwords). These tables are read by
-- user, session or token rather than by account (sign-in comes before any account is known), so
-- they carry no row-level security policy; events and their targets do.

CREATE TABLE users (
    user_id text PRIMARY KEY,
    account_row bigint NOT NULL REFERENCES accounts (account_row),
    email text COLLATE "C" NOT NULL,
    role text NOT NULL CHECK (role IN ('owner', 'admin', 'viewer', 'member')),
    password_hash text NOT NULL,
    totp_secret bytea,
    created_at bigint NOT NULL,
    UNIQUE (account_row, email)
);
-- Sign-in looks an email up across accounts.
CREATE INDEX users_by_email ON users (email);

CREATE TABLE sessions (
    session_hash bytea PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    created_at bigint NOT NULL,
    last_seen_at bigint NOT NULL,
    ip text,
    user_agent text,
    awaiting_second_factor boolean NOT NULL DEFAULT false,
    revoked_at bigint
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE recovery_codes (
    user_id text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    code_hash bytea NOT NULL,
    used_at bigint,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE invitations (
    token_hash bytea PRIMARY KEY,
    account_row bigint NOT NULL REFERENCES accounts (account_row),
    email text NOT NULL,
    role text NOT NULL,
    invited_by text NOT NULL,
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    accepted_at bigint
);

CREATE TABLE account_sign_in_settings (
    account_row bigint PRIMARY KEY REFERENCES accounts (account_row),
    requires_second_factor boolean NOT NULL DEFAULT false
);
