-- Random primary keys, so the cache of any one row does not flatter anybody.
local rows = tonumber(os.getenv("ROWS") or "10000")
local path = os.getenv("PATH_TEMPLATE")
local apikey = os.getenv("APIKEY")
math.randomseed(os.time())
request = function()
  local headers = {}
  if apikey and apikey ~= "" then
    headers["apikey"] = apikey
    headers["Authorization"] = "Bearer " .. apikey
  end
  return wrk.format("GET", string.format(path, math.random(1, rows)), headers)
end
