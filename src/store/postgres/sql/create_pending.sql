-- Keep a pending request. $1 hash, $2 data, $3 created_at, $4 expires_at.
INSERT INTO oauth_pending (hash, data, created_at, expires_at) VALUES ($1, $2, $3, $4)
