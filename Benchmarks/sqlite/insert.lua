-- One small JSON row per POST, as an app logging events would send them.
local apikey = os.getenv("APIKEY")
local path = os.getenv("INSERT_PATH")
local counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"kind":"click","payload":{"n":%d,"tags":["a","b"]}}', counter)
  return wrk.format("POST", path, {["apikey"] = apikey, ["Authorization"] = "Bearer " .. apikey,
    ["Content-Type"] = "application/json", ["Prefer"] = "return=minimal"}, body)
end
