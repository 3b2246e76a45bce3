-- Chained refresh load: each request pops a pre-issued refresh token and each response pushes
-- back the refresh_token it carries (rotation is on, so every token is used exactly once).
-- Tokens are dealt to wrk's threads round-robin so no two threads share one.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  nthreads = tonumber(args[2])
  queue, head, tail = {}, 1, 0
  local i = 0
  for line in io.lines(args[1]) do
    if i % nthreads == id then
      tail = tail + 1
      queue[tail] = line
    end
    i = i + 1
  end
  lost = 0
end

function request()
  local token
  if head <= tail then
    token = queue[head]
    queue[head] = nil
    head = head + 1
  else
    token = "exhausted"
  end
  return wrk.format("POST", "/oauth/token", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = "Basic YmVuY2g6YmVuY2gtc2VjcmV0",
  }, "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
  local token = body:match('"refresh_token":"([^"]+)"')
  if token then
    tail = tail + 1
    queue[tail] = token
  else
    lost = lost + 1
  end
end
