-- Store an authorization code.
INSERT INTO oauth_codes (hash, client_id, subject, redirect_uri, scope, challenge,
    challenge_method, issued_at, expires_at, resources)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
