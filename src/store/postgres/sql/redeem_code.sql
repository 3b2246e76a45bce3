-- Redeem a code once and create its grant in the same statement: insert_grant.sql's
-- parameters, and $19 the code's hash. Columns: redeemed (1 when this statement redeemed it),
-- redeemed_by (the first redemption's grant, when visible), code_exists.
WITH c AS (
    UPDATE oauth_codes SET redeemed_by = $1 WHERE hash = $19 AND redeemed_by IS NULL RETURNING hash
), /* insert_grant */
SELECT (SELECT count(*) FROM c) AS redeemed,
       (SELECT redeemed_by FROM oauth_codes WHERE hash = $19) AS redeemed_by,
       (SELECT count(*) FROM oauth_codes WHERE hash = $19) AS code_exists
