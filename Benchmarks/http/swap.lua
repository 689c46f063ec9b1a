-- Known-user recommendations while a new version is activated: counts the answers per version.
local users = tonumber(os.getenv("USERS") or "20000")
local pipeline = os.getenv("PIPELINE") or "als"
local threads = {}
math.randomseed(os.time() + 2)
setup = function(thread) table.insert(threads, thread) end
init = function() v1 = 0; v2 = 0; other = 0 end
request = function()
  return wrk.format("GET", "/v1/pipelines/" .. pipeline .. "/users/u" .. math.random(0, users - 1) .. "/recommendations?k=10")
end
response = function(status, headers, body)
  if body:find('"als":1', 1, true) then v1 = v1 + 1 elseif body:find('"als":2', 1, true) then v2 = v2 + 1 else other = other + 1 end
end
done = function(summary, latency, requests)
  local a, b, c = 0, 0, 0
  for _, thread in ipairs(threads) do a = a + thread:get("v1"); b = b + thread:get("v2"); c = c + thread:get("other") end
  io.write(string.format("versions: v1 %d, v2 %d, other %d\n", a, b, c))
end
