-- Clear at most $2 sealed grace-window responses whose window closed by $1. Column: how many.
WITH c AS (
    UPDATE oauth_refresh_tokens SET sealed = NULL, sealed_until = NULL
    WHERE hash IN (SELECT hash FROM oauth_refresh_tokens WHERE sealed_until <= $1 LIMIT $2)
    RETURNING 1
)
SELECT count(*) FROM c
