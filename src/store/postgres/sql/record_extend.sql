-- Let a live record last longer, never shorter. $1 key, $2 expires_at, $3 now.
-- Column: count (1 when a live record was there, else 0).
WITH w AS (
    UPDATE oauth_records SET expires_at = GREATEST(expires_at, $2)
    WHERE key = $1 AND expires_at > $3
    RETURNING 1
)
SELECT count(*) AS count FROM w
