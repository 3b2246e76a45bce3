-- Mixed soak traffic, per request: 40 % validate (GET /protected), 20 % client_credentials,
-- 20 % chained refresh (rotation on), 10 % password grant, 10 % revocation of a refresh token
-- issued by an earlier password grant (which takes its family with it).
-- Responses steer the state: client_credentials answers (no refresh_token) refresh the token
-- used for validation; "read write" answers carry the next refresh token of a chain; "read"
-- answers (password grants with scope=read) give tokens to revoke.
local counter = 0
local threads = {}
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local BASIC = "Basic YmVuY2g6YmVuY2gtc2VjcmV0"
local FORM = "application/x-www-form-urlencoded"

function init(args)
  local n = tonumber(args[2])
  chain, ch, ct = {}, 1, 0
  local i = 0
  for line in io.lines(args[1]) do
    if i % n == id then ct = ct + 1; chain[ct] = line end
    i = i + 1
  end
  access = args[3]
  revocable, rh, rt = {}, 1, 0
  step = 0
  sent = { validate = 0, client_credentials = 0, refresh = 0, password = 0, revoke = 0 }
end

local function post(path, body)
  return wrk.format("POST", path, { ["Content-Type"] = FORM, ["Authorization"] = BASIC }, body)
end

function request()
  step = (step + 1) % 10
  if step < 4 then
    sent.validate = sent.validate + 1
    return wrk.format("GET", "/protected", { ["Authorization"] = "Bearer " .. access })
  elseif step < 6 then
    sent.client_credentials = sent.client_credentials + 1
    return post("/oauth/token", "grant_type=client_credentials")
  elseif step < 8 and ch <= ct then
    local token = chain[ch]; chain[ch] = nil; ch = ch + 1
    sent.refresh = sent.refresh + 1
    return post("/oauth/token", "grant_type=refresh_token&refresh_token=" .. token)
  elseif step == 9 and rh <= rt then
    local token = revocable[rh]; revocable[rh] = nil; rh = rh + 1
    sent.revoke = sent.revoke + 1
    return post("/oauth/revoke", "token=" .. token .. "&token_type_hint=refresh_token")
  end
  sent.password = sent.password + 1
  return post("/oauth/token", "grant_type=password&username=bench&password=bench&scope=read")
end

function response(status, headers, body)
  local at = body:match('"access_token":"([^"]+)"')
  local rtk = body:match('"refresh_token":"([^"]+)"')
  if at and not rtk then
    access = at
  elseif rtk and body:find('"scope":"read write"', 1, true) then
    ct = ct + 1; chain[ct] = rtk
  elseif rtk then
    rt = rt + 1; revocable[rt] = rtk
  end
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local s = t:get("sent")
    for k, v in pairs(s) do total[k] = (total[k] or 0) + v end
  end
  io.write("mix:")
  for _, k in ipairs({ "validate", "client_credentials", "refresh", "password", "revoke" }) do
    io.write(" ", k, "=", total[k] or 0)
  end
  io.write("\n")
end
