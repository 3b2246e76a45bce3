-- Remove a pending request and return it: of concurrent statements, the first deletes the row
-- and the others, waiting on its lock, find none. $1 hash.
DELETE FROM oauth_pending WHERE hash = $1 RETURNING data, created_at, expires_at
