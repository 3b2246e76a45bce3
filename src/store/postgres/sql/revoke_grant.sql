-- Revoke a family. $1 grant id, $2 tombstone seconds. Live -> revoked; unknown -> a tombstone,
-- so a grant created later is born revoked. Column: the number of live grants revoked (0 or 1).
WITH u AS (
    UPDATE oauth_grants SET revoked = TRUE WHERE id = $1 AND NOT revoked RETURNING 1
), t AS (
    INSERT INTO oauth_grants (id, client_id, scope, grant_type, created_at, revoked, purge_at)
    VALUES ($1, '', '', 'tombstone', extract(epoch FROM now())::bigint, TRUE,
            extract(epoch FROM now())::bigint + $2)
    ON CONFLICT (id) DO NOTHING
)
SELECT count(*) FROM u
