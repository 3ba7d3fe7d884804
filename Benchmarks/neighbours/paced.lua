-- One request per connection every DELAY_MS: connections x 1000 / DELAY_MS requests a second at most.
local path = os.getenv("PATH_TEMPLATE")
local apikey = os.getenv("APIKEY")
local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
local method = os.getenv("METHOD") or "GET"
local body = os.getenv("BODY")
math.randomseed(os.time())
request = function()
  local headers = {apikey = apikey, Authorization = "Bearer " .. apikey}
  if body then headers["Content-Type"] = "application/json" end
  return wrk.format(method, string.format(path, math.random(1, 10000)), headers, body)
end
delay = function() return delay_ms end
