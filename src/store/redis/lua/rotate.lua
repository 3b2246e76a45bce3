-- One use of a refresh token, a compare-and-set on its state and generation.
-- ARGV: IP presented gen now ahash ascope aiat aexp has_r rhash riat rexp rgen sealed
--       sealed_until revoke_prev purge_at
-- Reply: 1 applied, 0 conflict (no longer active, other generation, expired, family revoked).
local rk = P..'r:'..ARGV[2]
local r = redis.call('HMGET', rk, 'g','state','gen','exp','access')
if not r[1] or r[2] ~= 'active' or r[3] ~= ARGV[3] or tonumber(r[4]) <= tonumber(ARGV[4]) then return 0 end
local gk = P..'g:'..r[1]
if redis.call('HGET', gk, 'revoked') ~= '0' then return 0 end
if ARGV[9] == '1' then
  redis.call('HSET', rk, 'state', 'rotated', 'rotated_at', ARGV[4])
  if ARGV[14] ~= '' then
    -- The sealed response lives in a key of its own that expires with the grace window.
    local zk = P..'z:'..ARGV[2]
    redis.call('SET', zk, ARGV[14])
    redis.call('EXPIREAT', zk, ARGV[15])
    redis.call('HSET', rk, 'sealed_until', ARGV[15])
  end
  if tonumber(ARGV[13]) > tonumber(redis.call('HGET', gk, 'gen') or '0') then
    redis.call('HSET', gk, 'gen', ARGV[13])
  end
  local nk = P..'r:'..ARGV[10]
  redis.call('HSET', nk, 'g', r[1], 'iat', ARGV[11], 'exp', ARGV[12], 'gen', ARGV[13],
    'access', ARGV[5], 'state', 'active')
  redis.call('EXPIREAT', nk, ARGV[12])
else
  redis.call('HSET', rk, 'access', ARGV[5])
end
if ARGV[16] == '1' and r[5] then
  redis.call('DEL', P..'a:'..r[5])
  announce('a:'..r[5])
end
local ak = P..'a:'..ARGV[5]
redis.call('HSET', ak, 'g', r[1], 'scope', ARGV[6], 'iat', ARGV[7], 'exp', ARGV[8])
redis.call('EXPIREAT', ak, ARGV[8])
expire_at_least(gk, ARGV[17])
-- The family lives on: so do its entries in its client's and subject's indexes (in a cluster,
-- the caller extends them).
if not CLUSTER then
  local owner = redis.call('HMGET', gk, 'client', 'sub')
  index(IP..'k:'..owner[1], r[1], ARGV[17], ARGV[4])
  if owner[2] then index(IP..'s:'..owner[2], r[1], ARGV[17], ARGV[4]) end
end
return 1
