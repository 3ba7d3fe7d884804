-- POSTs a typo query to {apiUrl}/search/v1/indexes/products/search, one of QUERIES in turn per thread.
local apikey = os.getenv("APIKEY")
local path = os.getenv("SEARCH_PATH")
local queries = {}
for query in string.gmatch(os.getenv("QUERIES"), "[^|]+") do table.insert(queries, query) end
local turn = 0
request = function()
  turn = turn + 1
  local q = queries[(turn % #queries) + 1]
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. apikey}
  return wrk.format("POST", path, headers, '{"q":"' .. q .. '","attributesToRetrieve":["id","name"],"limit":20}')
end
