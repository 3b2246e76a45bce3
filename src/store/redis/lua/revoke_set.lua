-- ARGV: P set batch. Pops up to `batch` grant ids from a subject's or client's index and revokes
-- them; called until the index is empty, so no single script blocks Redis for long.
-- Reply: {revoked, popped}.
local ids = redis.call('SPOP', P..ARGV[2], tonumber(ARGV[3]))
local n = 0
for _, gid in ipairs(ids) do
  local gk = P..'g:'..gid
  if redis.call('HGET', gk, 'revoked') == '0' then
    redis.call('HSET', gk, 'revoked', '1')
    n = n + 1
  end
end
return {n, #ids}
