-- A grant with its first tokens, as CTEs `g`, `a`, `r` of a larger statement.
-- $1 id, $2 client_id, $3 subject, $4 scope, $5 grant_type, $6 created_at, $7 expires_at,
-- $8 purge_at, $9 access hash, $10 access scope, $11 access issued_at, $12 access expires_at,
-- $13 refresh hash (NULL: none), $14 refresh issued_at, $15 refresh expires_at,
-- $16 refresh generation, $17 the grant's resources, $18 the access token's audience. The gate
-- comment is replaced by a condition (code redemption) or
-- nothing.
g AS (
    INSERT INTO oauth_grants (id, client_id, subject, scope, grant_type, created_at, expires_at,
        purge_at, resources)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $17 /* gate */
    ON CONFLICT (id) DO UPDATE SET client_id = EXCLUDED.client_id, subject = EXCLUDED.subject,
        scope = EXCLUDED.scope, resources = EXCLUDED.resources, grant_type = EXCLUDED.grant_type, created_at = EXCLUDED.created_at,
        expires_at = EXCLUDED.expires_at,
        purge_at = GREATEST(oauth_grants.purge_at, EXCLUDED.purge_at)
    RETURNING id
), a AS (
    INSERT INTO oauth_access_tokens (hash, grant_id, scope, issued_at, expires_at, audience)
    SELECT $9, id, $10, $11, $12, $18 FROM g
), r AS (
    INSERT INTO oauth_refresh_tokens (hash, grant_id, issued_at, expires_at, generation, access_hash)
    SELECT $13, id, $14, $15, $16, $9 FROM g WHERE $13::bytea IS NOT NULL
)
