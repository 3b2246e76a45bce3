-- ARGV: IP code_hash, then create_grant's 20 arguments. Redeems the code once and creates the
-- grant in the same step. Reply: {'ok'}, {'missing'} or {'used', first_grant_id}.
local ck = P..'c:'..ARGV[2]
if redis.call('EXISTS', ck) == 0 then return {'missing'} end
local by = redis.call('HGET', ck, 'redeemed_by')
if by then return {'used', by} end
redis.call('HSET', ck, 'redeemed_by', ARGV[3])
create_grant(3)
return {'ok'}
