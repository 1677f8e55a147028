-- Single sign-on with an OpenID Connect provider (issue 15, item 7). An account's provider and
-- what signing in with it does (the client secret is kept as given: Logbook must present it to
-- the provider), and the sign-ins in flight: the `state` sent to the provider and the browser's
-- cookie value only as SHA-256, deleted by the first answer that names them, so a `state` works
-- once on every node. Like the people tables these are read before any account is known, so
-- they carry no row-level security policy.
CREATE TABLE single_sign_on_settings (
    account_row INTEGER PRIMARY KEY REFERENCES accounts (account_row),
    display_name TEXT NOT NULL,
    issuer TEXT NOT NULL,
    client_id TEXT NOT NULL,
    client_secret TEXT NOT NULL,
    default_role TEXT NOT NULL CHECK (default_role IN ('owner', 'admin', 'viewer', 'member')),
    invited_only INTEGER NOT NULL,
    password_sign_in_allowed INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE single_sign_on_attempts (
    state_hash BLOB PRIMARY KEY,
    browser_hash BLOB NOT NULL,
    account_row INTEGER NOT NULL REFERENCES accounts (account_row),
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX single_sign_on_attempts_by_expiry ON single_sign_on_attempts (expires_at);
