-- POSTs a GraphQL document with a random $id: BODY_TEMPLATE holds %d where the id goes.
local rows = tonumber(os.getenv("ROWS") or "10000")
local template = os.getenv("BODY_TEMPLATE")
local apikey = os.getenv("APIKEY")
local path = os.getenv("GRAPHQL_PATH")
math.randomseed(os.time())
request = function()
  local headers = {["Content-Type"] = "application/json", ["apikey"] = apikey, ["Authorization"] = "Bearer " .. apikey}
  return wrk.format("POST", path, headers, string.format(template, math.random(1, rows)))
end
