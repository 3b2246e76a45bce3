-- ARGV: IP hash. Reply: 1 when the token existed and its family was live.
local ak = P..'a:'..ARGV[2]
local gid = redis.call('HGET', ak, 'g')
if not gid then return 0 end
redis.call('DEL', ak)
announce('a:'..ARGV[2])
if grant(gid) then return 1 end
return 0
