-- Replace a live record, only if one is there. $1 key, $2 data, $3 expires_at, $4 now.
-- Column: written (1 or 0). The UPDATE's row lock orders it with a concurrent delete.
WITH w AS (
    UPDATE oauth_records SET data = $2, counter = 0, expires_at = $3
    WHERE key = $1 AND expires_at > $4
    RETURNING 1
)
SELECT count(*) AS count FROM w
