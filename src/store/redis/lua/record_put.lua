-- Keep a short-lived record. KEYS[1] its key. ARGV: data expires_at now if_absent ('1' or '0').
-- A record is a hash: d (data) and e (expiry), with the key's own TTL. Returns 1 when written;
-- with if_absent, 0 when a live record (or counter) is there.
local k = KEYS[1]
if ARGV[4] == '1' then
  local e = redis.call('HGET', k, 'e')
  if e and tonumber(e) > tonumber(ARGV[3]) then return 0 end
end
redis.call('DEL', k)
redis.call('HSET', k, 'd', ARGV[1], 'e', ARGV[2])
redis.call('EXPIREAT', k, ARGV[2])
return 1
