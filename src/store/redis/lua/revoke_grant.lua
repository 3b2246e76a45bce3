-- ARGV: IP gid tombstone_secs. Reply: 1 when a live grant was revoked. An unknown grant becomes a
-- tombstone, so one created later is born revoked.
local gk = P..'g:'..ARGV[2]
local rv = redis.call('HGET', gk, 'revoked')
if rv == '0' then
  redis.call('HSET', gk, 'revoked', '1')
  announce('g:'..ARGV[2])
  return 1
end
if not rv then
  redis.call('HSET', gk, 'revoked', '1')
  redis.call('EXPIRE', gk, ARGV[3])
end
return 0
