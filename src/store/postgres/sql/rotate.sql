-- One use of a refresh token. One statement for both modes ($16: rotating), so it is prepared
-- once. The UPDATE's row lock is the compare-and-set: of concurrent statements, the first
-- changes the row and the others, re-checking `rotated_at IS NULL`, match nothing. Without
-- rotation every statement matches in turn; to revoke the access token the one before it issued
-- (a row this statement's snapshot would not see), the store first takes the row's lock in a
-- statement of its own, in one transaction with this one (lock_refresh.sql).
-- $1 presented hash, $2 now, $3 sealed, $4 sealed_until, $5 presented generation,
-- $6 successor generation, $7 purge_at, $8 revoke the previous access token, $9 access hash,
-- $10 access scope, $11 access issued_at, $12 access expires_at, $13 successor hash,
-- $14 successor issued_at, $15 successor expires_at, $16 rotating, $17 access audience.
WITH cur AS (
    UPDATE oauth_refresh_tokens r SET
        rotated_at = CASE WHEN $16 THEN $2 ELSE r.rotated_at END,
        sealed = CASE WHEN $16 THEN $3 ELSE r.sealed END,
        sealed_until = CASE WHEN $16 THEN $4 ELSE r.sealed_until END,
        access_hash = CASE WHEN $16 THEN r.access_hash ELSE $9 END
    FROM oauth_grants g,
         (SELECT hash, access_hash AS prev FROM oauth_refresh_tokens WHERE hash = $1) old
    WHERE r.hash = $1 AND old.hash = r.hash AND r.rotated_at IS NULL AND r.generation = $5
      AND r.expires_at > $2 AND g.id = r.grant_id AND NOT g.revoked
    RETURNING r.grant_id, old.prev
), bump AS (
    UPDATE oauth_grants SET generation = GREATEST(generation, $6),
        purge_at = GREATEST(purge_at, $7)
    WHERE id = (SELECT grant_id FROM cur)
), del AS (
    DELETE FROM oauth_access_tokens WHERE $8 AND hash = (SELECT prev FROM cur)
), a AS (
    INSERT INTO oauth_access_tokens (hash, grant_id, scope, issued_at, expires_at, audience)
    SELECT $9, grant_id, $10, $11, $12, $17 FROM cur
), nr AS (
    INSERT INTO oauth_refresh_tokens (hash, grant_id, issued_at, expires_at, generation, access_hash)
    SELECT $13, grant_id, $14, $15, $6, $9 FROM cur WHERE $16
)
SELECT count(*) FROM cur
