-- Version 1: grants, access and refresh tokens, authorization codes.
CREATE TABLE oauth_grants (
    id          BYTEA PRIMARY KEY,
    client_id   TEXT NOT NULL,
    subject     TEXT,
    scope       TEXT NOT NULL,
    grant_type  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked     BOOLEAN NOT NULL DEFAULT FALSE,
    generation  INTEGER NOT NULL DEFAULT 0,
    purge_at    BIGINT NOT NULL
);
CREATE INDEX oauth_grants_subject ON oauth_grants (subject) WHERE NOT revoked;
CREATE INDEX oauth_grants_client ON oauth_grants (client_id) WHERE NOT revoked;
CREATE INDEX oauth_grants_purge ON oauth_grants (purge_at);
CREATE TABLE oauth_access_tokens (
    hash        BYTEA PRIMARY KEY,
    grant_id    BYTEA NOT NULL,
    scope       TEXT NOT NULL,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX oauth_access_tokens_expiry ON oauth_access_tokens (expires_at);
CREATE INDEX oauth_access_tokens_grant ON oauth_access_tokens (grant_id);
CREATE TABLE oauth_refresh_tokens (
    hash         BYTEA PRIMARY KEY,
    grant_id     BYTEA NOT NULL,
    issued_at    BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    generation   INTEGER NOT NULL,
    access_hash  BYTEA,
    rotated_at   BIGINT,
    sealed       BYTEA,
    sealed_until BIGINT
);
CREATE INDEX oauth_refresh_tokens_expiry ON oauth_refresh_tokens (expires_at);
CREATE INDEX oauth_refresh_tokens_grant ON oauth_refresh_tokens (grant_id);
CREATE TABLE oauth_codes (
    hash             BYTEA PRIMARY KEY,
    client_id        TEXT NOT NULL,
    subject          TEXT NOT NULL,
    redirect_uri     TEXT,
    scope            TEXT NOT NULL,
    challenge        TEXT,
    challenge_method TEXT,
    issued_at        BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    redeemed_by      BYTEA
);
CREATE INDEX oauth_codes_expiry ON oauth_codes (expires_at);
