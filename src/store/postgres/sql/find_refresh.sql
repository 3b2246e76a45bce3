-- A refresh token of a live grant, in any state. $1 hash.
SELECT r.issued_at, r.expires_at, r.generation, r.access_hash, r.rotated_at, r.sealed,
       r.sealed_until, /* grant_columns */
FROM oauth_refresh_tokens r JOIN oauth_grants g ON g.id = r.grant_id
WHERE r.hash = $1 AND NOT g.revoked
