-- The HTTP floor: a constant route (no engine call), to time what the server and wrk cost per request.
request = function() return wrk.format("GET", "/health/live") end
