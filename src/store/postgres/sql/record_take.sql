-- Remove a record and return it: of concurrent statements, the first deletes the row and the
-- others, waiting on its lock, find none. $1 key. (Lapsed: deleted, and not returned.)
DELETE FROM oauth_records WHERE key = $1 RETURNING data, expires_at
