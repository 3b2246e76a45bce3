-- Revoke every live grant whose subject (or client_id: the column is spliced in) is $1.
-- Column: how many.
WITH u AS (UPDATE oauth_grants SET revoked = TRUE WHERE /* column */ = $1 AND NOT revoked RETURNING 1)
SELECT count(*) FROM u
