-- ARGV: IP hash. Reply: gid scope iat exp aud, then the grant's fields (see grant_reply); nil
-- when unknown or its family is revoked.
local t = redis.call('HMGET', P..'a:'..ARGV[2], 'g','scope','iat','exp','aud')
if not t[1] then return nil end
local g = grant(t[1])
if not g then return nil end
return {t[1], t[2], t[3], t[4], t[5], grant_reply(g)}
