-- Version 5: one table for every kind of short-lived record (pending authorization requests,
-- and next device codes, DPoP proof ids, rate counters, fetched client documents), keyed by
-- kind and the hash of the record's id (`kind:hex`). A row holds a record (data) or a counter.
-- Pending requests move here from oauth_pending, which goes: a request in flight during the
-- upgrade lapses (the user starts again), as it would after its ten minutes.
CREATE TABLE oauth_records (
    key         TEXT PRIMARY KEY,
    data        BYTEA NOT NULL,
    counter     BIGINT NOT NULL DEFAULT 0,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX oauth_records_expiry ON oauth_records (expires_at);
DROP TABLE oauth_pending;
