-- Count one more in a fixed window. $1 key, $2 expires_at, $3 now. Column: count. A window
-- absent or over as of now starts again at 1 and ends at $2.
INSERT INTO oauth_records AS r (key, data, counter, expires_at) VALUES ($1, '', 1, $2)
ON CONFLICT (key) DO UPDATE SET
    counter = CASE WHEN r.expires_at <= $3 THEN 1 ELSE r.counter + 1 END,
    expires_at = CASE WHEN r.expires_at <= $3 THEN EXCLUDED.expires_at ELSE r.expires_at END
RETURNING counter AS count
