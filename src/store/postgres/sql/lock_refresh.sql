-- Take a refresh token's row lock, until the transaction ends. $1 hash.
SELECT 1 FROM oauth_refresh_tokens WHERE hash = $1 FOR UPDATE
