-- Version 3: requests kept between two steps of a flow (an authorization request awaiting the
-- resource owner's decision), under the hash of their handle, used once.
CREATE TABLE oauth_pending (
    hash        BYTEA PRIMARY KEY,
    data        BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX oauth_pending_expiry ON oauth_pending (expires_at);
