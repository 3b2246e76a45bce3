-- A live record. $1 key, $2 now.
SELECT data, expires_at FROM oauth_records WHERE key = $1 AND expires_at > $2
