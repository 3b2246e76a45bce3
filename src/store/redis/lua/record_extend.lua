-- Let a live record last longer. KEYS[1] its key. ARGV: expires_at now. Never shortens it.
-- Returns 1 when a live record was there, 0 when none was (nothing is created).
local k = KEYS[1]
local e = redis.call('HGET', k, 'e')
if not e or tonumber(e) <= tonumber(ARGV[2]) or redis.call('HEXISTS', k, 'd') == 0 then
  return 0
end
if tonumber(ARGV[1]) > tonumber(e) then
  redis.call('HSET', k, 'e', ARGV[1])
  redis.call('EXPIREAT', k, ARGV[1])
end
return 1
