-- Count one more in a fixed window. KEYS[1] the counter's key. ARGV: expires_at now.
-- A counter is a hash: n (count) and e (when its window ends), with the key's own TTL. A window
-- absent or over as of now starts again at 1. Returns the count.
local k = KEYS[1]
local e = redis.call('HGET', k, 'e')
if e and tonumber(e) > tonumber(ARGV[2]) then
  return redis.call('HINCRBY', k, 'n', 1)
end
redis.call('DEL', k)
redis.call('HSET', k, 'n', 1, 'e', ARGV[1])
redis.call('EXPIREAT', k, ARGV[1])
return 1
