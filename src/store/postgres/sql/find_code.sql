-- An authorization code, redeemed or not. $1 hash.
SELECT client_id, subject, redirect_uri, scope, resources, challenge, challenge_method, issued_at,
       expires_at, redeemed_by
FROM oauth_codes WHERE hash = $1
