-- Known-user recommendations: a random user of the load store's 20,000 per request.
local users = tonumber(os.getenv("USERS") or "20000")
local pipeline = os.getenv("PIPELINE") or "als"
local pause = tonumber(os.getenv("DELAY_MS") or "0")
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/v1/pipelines/" .. pipeline .. "/users/u" .. math.random(0, users - 1) .. "/recommendations?k=10")
end
if pause > 0 then delay = function() return pause end end
