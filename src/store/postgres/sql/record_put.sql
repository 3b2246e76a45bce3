-- Keep a record. $1 key, $2 data, $3 expires_at, $4 now, $5 only if absent (no live row).
-- Column: written (1 or 0). A lapsed row counts as absent; a concurrent insert waits on the
-- key's lock, then sees the first row and writes only if that one lapsed.
WITH w AS (
    INSERT INTO oauth_records AS r (key, data, counter, expires_at) VALUES ($1, $2, 0, $3)
    ON CONFLICT (key) DO UPDATE SET data = EXCLUDED.data, counter = 0,
        expires_at = EXCLUDED.expires_at
    WHERE NOT $5 OR r.expires_at <= $4
    RETURNING 1
)
SELECT count(*) AS count FROM w
