-- KEYS: the keys to look at, all under the prefix ARGV[4] (in a cluster, of one slot).
-- ARGV: IP now code_retention prefix. Deletes those of the keys that may go: a token that expired
-- or whose family is revoked or ended, a code past its retention, a short-lived record past
-- its expiry.
P = ARGV[4]
local now = tonumber(ARGV[2])
local retention = tonumber(ARGV[3])
local n = 0
for i = 1, #KEYS do
  local k = KEYS[i]
  local kind = string.sub(k, #P + 1, #P + 2)
  if kind == 'a:' or kind == 'r:' then
    local f = redis.call('HMGET', k, 'g', 'exp')
    if f[1] then
      local dead = tonumber(f[2]) <= now
      if not dead then
        local g = redis.call('HMGET', P..'g:'..f[1], 'revoked', 'exp')
        dead = (not g[1]) or g[1] ~= '0' or (g[2] ~= '' and tonumber(g[2]) <= now)
      end
      if dead then
        redis.call('DEL', k)
        n = n + 1
      end
      -- A sealed grace-window response goes with its token, or when its window closes.
      if kind == 'r:' then
        local su = redis.call('HGET', k, 'sealed_until')
        if dead or (su and tonumber(su) <= now) then
          redis.call('DEL', P..'z:'..string.sub(k, #P + 3))
          if not dead then redis.call('HDEL', k, 'sealed', 'sealed_until') end
        end
      end
    end
  elseif kind == 'c:' then
    local e = redis.call('HGET', k, 'exp')
    if e and tonumber(e) + retention <= now then redis.call('DEL', k) n = n + 1 end
  elseif kind == 'x:' then
    local e = redis.call('HGET', k, 'e')
    if e and tonumber(e) <= now then redis.call('DEL', k) n = n + 1 end
  end
end
return n
