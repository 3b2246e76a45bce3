-- Shared by every script (prepended to each). ARGV[1] is the key prefix.
local P = ARGV[1]

-- A live grant's fields, in the order the Rust side reads them:
-- client, sub, scope, gtype, created, exp, revoked, gen. nil when unknown or revoked.
local function grant(gid)
  local g = redis.call('HMGET', P..'g:'..gid, 'client','sub','scope','gtype','created','exp','revoked','gen')
  if not g[1] or g[7] ~= '0' then return nil end
  return g
end

-- The grant fields a reply carries after the token's own: client sub scope gtype created exp gen.
local function grant_reply(g)
  return g[1], g[2], g[3], g[4], g[5], g[6], g[8]
end

-- Never shorten a key's life: set a TTL where none is, or extend a shorter one.
local function expire_at_least(key, ts)
  redis.call('EXPIREAT', key, ts, 'NX')
  redis.call('EXPIREAT', key, ts, 'GT')
end

-- A grant with its first tokens, from the 18 arguments starting at ARGV[i]:
--   gid client has_sub sub scope gtype created gexp purge_at
--   ahash ascope aiat aexp has_r rhash riat rexp rgen
local function create_grant(i)
  local gid = ARGV[i]
  local gk = P..'g:'..gid
  local existed = redis.call('EXISTS', gk) == 1
  redis.call('HSET', gk, 'client', ARGV[i+1], 'scope', ARGV[i+4], 'gtype', ARGV[i+5],
    'created', ARGV[i+6], 'exp', ARGV[i+7], 'gen', '0')
  if ARGV[i+2] == '1' then
    redis.call('HSET', gk, 'sub', ARGV[i+3])
    local sk = P..'s:'..ARGV[i+3]
    redis.call('SADD', sk, gid)
    expire_at_least(sk, ARGV[i+8])
  end
  -- A tombstone (revoked before created) keeps its revoked flag.
  if not existed then redis.call('HSET', gk, 'revoked', '0') end
  expire_at_least(gk, ARGV[i+8])
  local ck = P..'k:'..ARGV[i+1]
  redis.call('SADD', ck, gid)
  expire_at_least(ck, ARGV[i+8])
  local ak = P..'a:'..ARGV[i+9]
  redis.call('HSET', ak, 'g', gid, 'scope', ARGV[i+10], 'iat', ARGV[i+11], 'exp', ARGV[i+12])
  redis.call('EXPIREAT', ak, ARGV[i+12])
  if ARGV[i+13] == '1' then
    local rk = P..'r:'..ARGV[i+14]
    redis.call('HSET', rk, 'g', gid, 'iat', ARGV[i+15], 'exp', ARGV[i+16], 'gen', ARGV[i+17],
      'access', ARGV[i+9], 'state', 'active')
    redis.call('EXPIREAT', rk, ARGV[i+16])
  end
end
