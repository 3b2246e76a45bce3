-- An access token of a live grant. $1 hash.
SELECT a.scope, a.audience, a.issued_at, a.expires_at, /* grant_columns */
FROM oauth_access_tokens a JOIN oauth_grants g ON g.id = a.grant_id
WHERE a.hash = $1 AND NOT g.revoked
