-- ARGV: IP set batch. Pops up to `batch` grant ids from a subject's or client's index and revokes
-- them; called until the index is empty, so no single script blocks Redis for long. One Redis
-- server only: in a cluster the grants are in other slots, and the caller revokes them one by one.
-- Reply: {revoked, popped}.
local key = P..ARGV[2]
upgrade_index(key)
-- ZPOPMIN answers id, score, id, score…
local popped = redis.call('ZPOPMIN', key, tonumber(ARGV[3]))
local n = 0
for i = 1, #popped, 2 do
  local gk = P..'g:'..popped[i]
  if redis.call('HGET', gk, 'revoked') == '0' then
    redis.call('HSET', gk, 'revoked', '1')
    n = n + 1
  end
end
-- The key suffix is `s:{subject}` or `k:{client}`: the announcement's own form.
if n > 0 then announce(ARGV[2]) end
return {n, #popped / 2}
