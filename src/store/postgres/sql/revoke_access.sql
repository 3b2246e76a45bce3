-- Delete one access token. $1 hash. Column: live (it existed and its family was live).
WITH d AS (DELETE FROM oauth_access_tokens WHERE hash = $1 RETURNING grant_id)
SELECT EXISTS (SELECT 1 FROM d JOIN oauth_grants g ON g.id = d.grant_id WHERE NOT g.revoked) AS live
