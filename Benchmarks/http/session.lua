-- Anonymous sessions of 5 random items, folded in on the fly.
local items = tonumber(os.getenv("ITEMS") or "100000")
local pipeline = os.getenv("PIPELINE") or "als"
math.randomseed(os.time() + 1)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local chosen = {}
  for n = 1, 5 do chosen[n] = '"i' .. math.random(0, items - 1) .. '"' end
  return wrk.format(nil, "/v1/pipelines/" .. pipeline .. "/sessions", nil, '{"items":[' .. table.concat(chosen, ",") .. '],"k":10}')
end
