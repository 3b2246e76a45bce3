-- ARGV: IP hash. Reply: gid iat exp gen access state rotated_at sealed sealed_until, then the
-- grant's fields (see grant_reply); nil when unknown or its family is revoked.
local r = redis.call('HMGET', P..'r:'..ARGV[2], 'g','iat','exp','gen','access','state','rotated_at','sealed','sealed_until')
if not r[1] then return nil end
local g = grant(r[1])
if not g then return nil end
-- The sealed response has its own key (0.1.0 kept it in the token's hash).
local sealed = redis.call('GET', P..'z:'..ARGV[2]) or r[8]
return {r[1], r[2], r[3], r[4], r[5], r[6], r[7], sealed, r[9], grant_reply(g)}
