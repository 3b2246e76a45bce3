-- One use of a refresh token, a compare-and-set on its state and generation.
-- ARGV: IP presented gen now ahash ascope aiat aexp has_r rhash riat rexp rgen sealed
--       sealed_until revoke_prev keep aaud
-- keep: 0, or the family's new keep-until time (`keep_until` in mod.rs), when the one its grant
-- key and index entries were last given here no longer covers its tokens: then they are extended
-- (on one server; in a cluster the caller extends the index entries).
-- Reply: 1 applied, 0 conflict (no longer active, other generation, expired, family revoked).
local rk = P..'r:'..ARGV[2]
local r = redis.call('HMGET', rk, 'g','state','gen','exp','access')
if not r[1] or r[2] ~= 'active' or r[3] ~= ARGV[3] or tonumber(r[4]) <= tonumber(ARGV[4]) then return 0 end
local gk = P..'g:'..r[1]
local g = redis.call('HMGET', gk, 'revoked', 'gen', 'client', 'sub')
if g[1] ~= '0' then return 0 end
if ARGV[9] == '1' then
  if ARGV[14] ~= '' then
    -- The sealed response lives in a key of its own that expires with the grace window.
    redis.call('SET', P..'z:'..ARGV[2], ARGV[14], 'EXAT', ARGV[15])
    redis.call('HSET', rk, 'state', 'rotated', 'rotated_at', ARGV[4], 'sealed_until', ARGV[15])
  else
    redis.call('HSET', rk, 'state', 'rotated', 'rotated_at', ARGV[4])
  end
  if tonumber(ARGV[13]) > tonumber(g[2] or '0') then
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
redis.call('HSET', ak, 'g', r[1], 'scope', ARGV[6], 'iat', ARGV[7], 'exp', ARGV[8], 'aud', ARGV[18])
redis.call('EXPIREAT', ak, ARGV[8])
if ARGV[17] ~= '0' then
  expire_at_least(gk, ARGV[17])
  if not CLUSTER then
    index(IP..'k:'..g[3], r[1], ARGV[17], ARGV[4])
    if g[4] then index(IP..'s:'..g[4], r[1], ARGV[17], ARGV[4]) end
  end
end
return 1
