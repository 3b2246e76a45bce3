-- Keep a short-lived record. KEYS[1] its key. ARGV: data expires_at now mode ('0' always, '1'
-- only if absent, '2' only if present). A record is a hash: d (data) and e (expiry), with the
-- key's own TTL. Returns 1 when written; 0 when the mode says not to (a live record or counter
-- is there, or none is).
local k = KEYS[1]
if ARGV[4] ~= '0' then
  local e = redis.call('HGET', k, 'e')
  local live = e and tonumber(e) > tonumber(ARGV[3])
  if ARGV[4] == '1' and live then return 0 end
  if ARGV[4] == '2' and not live then return 0 end
end
redis.call('DEL', k)
redis.call('HSET', k, 'd', ARGV[1], 'e', ARGV[2])
redis.call('EXPIREAT', k, ARGV[2])
return 1
