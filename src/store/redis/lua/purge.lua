-- ARGV: P now code_retention key... Deletes those of the given keys that may go: a token that
-- expired or whose family is revoked or ended, a code past its retention.
local now = tonumber(ARGV[2])
local retention = tonumber(ARGV[3])
local n = 0
for i = 4, #ARGV do
  local k = ARGV[i]
  local kind = string.sub(k, #P + 1, #P + 2)
  if kind == 'a:' or kind == 'r:' then
    local f = redis.call('HMGET', k, 'g', 'exp')
    if f[1] then
      local dead = tonumber(f[2]) <= now
      if not dead then
        local g = redis.call('HMGET', P..'g:'..f[1], 'revoked', 'exp')
        dead = (not g[1]) or g[1] ~= '0' or (g[2] ~= '' and tonumber(g[2]) <= now)
      end
      if dead then redis.call('DEL', k) n = n + 1 end
    end
  elseif kind == 'c:' then
    local e = redis.call('HGET', k, 'exp')
    if e and tonumber(e) + retention <= now then redis.call('DEL', k) n = n + 1 end
  end
end
return n
