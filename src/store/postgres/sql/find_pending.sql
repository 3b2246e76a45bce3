-- A pending request. $1 hash.
SELECT data, created_at, expires_at FROM oauth_pending WHERE hash = $1
