-- Shared by every script (prepended to each).
-- KEYS[1] is the prefix of the keys the script works on: the store's prefix, or in a Redis
-- Cluster that prefix and the grant's route as a hash tag (`prefix{route}`), so that every key of
-- one grant is in one slot, the one the script runs in. ARGV[1] is the prefix of the subject and
-- client indexes, or '' in a cluster, where they live in other slots and the caller keeps them.
local P = KEYS[1]
local IP = ARGV[1]
local CLUSTER = IP == ''

-- A live grant's fields, in the order the Rust side reads them:
-- client, sub, scope, gtype, created, exp, revoked, gen, res. nil when unknown or revoked.
local function grant(gid)
  local g = redis.call('HMGET', P..'g:'..gid, 'client','sub','scope','gtype','created','exp','revoked','gen','res')
  if not g[1] or g[7] ~= '0' then return nil end
  return g
end

-- The grant fields a reply carries after the token's own: client sub scope gtype created exp gen
-- res (the resources, RFC 8707; nil for a grant an earlier version wrote).
local function grant_reply(g)
  return g[1], g[2], g[3], g[4], g[5], g[6], g[8], g[9]
end

-- Announce a revocation to every instance's near-cache, in the script's atomic step (the
-- message formats are `Invalidation::encode`'s). In a cluster the channel is the slot's own
-- (sharded pub/sub), which every instance subscribes to on the node that serves it.
local function announce(message)
  if CLUSTER then
    redis.call('SPUBLISH', P..'invalidations', message)
  else
    redis.call('PUBLISH', P..'invalidations', message)
  end
end

-- Never shorten a key's life: set a TTL where none is, or extend a shorter one.
local function expire_at_least(key, ts)
  redis.call('EXPIREAT', key, ts, 'NX')
  redis.call('EXPIREAT', key, ts, 'GT')
end

-- A subject's (s:) or client's (k:) index of grant ids is a sorted set scored by each grant's
-- keep-until time (`keep_until` in mod.rs): an entry lives as long as its grant key (a rotation
-- raises the score), and entries whose grant is gone are trimmed. Version 0.1.0 kept plain sets;
-- one is converted where it is met, its members scored by the set's own expiry.
local function upgrade_index(key)
  if redis.call('TYPE', key).ok ~= 'set' then return end
  local ids = redis.call('SMEMBERS', key)
  local ttl = redis.call('EXPIRETIME', key)
  redis.call('DEL', key)
  for _, id in ipairs(ids) do redis.call('ZADD', key, ttl, id) end
  if ttl > 0 then redis.call('EXPIREAT', key, ttl) end
end

local function index(key, gid, keep, now)
  upgrade_index(key)
  redis.call('ZADD', key, 'GT', keep, gid)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. now)
  expire_at_least(key, keep)
end

-- A grant with its first tokens, from the 20 arguments starting at ARGV[i]:
--   gid client has_sub sub scope gtype created gexp keep
--   ahash ascope aiat aexp has_r rhash riat rexp rgen res aaud
local function create_grant(i)
  local gid = ARGV[i]
  local gk = P..'g:'..gid
  local existed = redis.call('EXISTS', gk) == 1
  redis.call('HSET', gk, 'client', ARGV[i+1], 'scope', ARGV[i+4], 'gtype', ARGV[i+5],
    'created', ARGV[i+6], 'exp', ARGV[i+7], 'gen', '0', 'res', ARGV[i+18])
  if ARGV[i+2] == '1' then
    redis.call('HSET', gk, 'sub', ARGV[i+3])
    if not CLUSTER then index(IP..'s:'..ARGV[i+3], gid, ARGV[i+8], ARGV[i+6]) end
  end
  -- A tombstone (revoked before created) keeps its revoked flag.
  if not existed then redis.call('HSET', gk, 'revoked', '0') end
  expire_at_least(gk, ARGV[i+8])
  if not CLUSTER then index(IP..'k:'..ARGV[i+1], gid, ARGV[i+8], ARGV[i+6]) end
  local ak = P..'a:'..ARGV[i+9]
  redis.call('HSET', ak, 'g', gid, 'scope', ARGV[i+10], 'iat', ARGV[i+11], 'exp', ARGV[i+12],
    'aud', ARGV[i+19])
  redis.call('EXPIREAT', ak, ARGV[i+12])
  if ARGV[i+13] == '1' then
    local rk = P..'r:'..ARGV[i+14]
    redis.call('HSET', rk, 'g', gid, 'iat', ARGV[i+15], 'exp', ARGV[i+16], 'gen', ARGV[i+17],
      'access', ARGV[i+9], 'state', 'active')
    redis.call('EXPIREAT', rk, ARGV[i+16])
  end
end
