-- GET by a random `_id` from IDS_FILE (one 24-hex ObjectId per line), as the baseline does.
local path = os.getenv("PATH_TEMPLATE")
local apikey = os.getenv("APIKEY")
local ids = {}
for line in io.lines(os.getenv("IDS_FILE")) do ids[#ids + 1] = line end
math.randomseed(os.time())
request = function()
  local headers = {}
  headers["apikey"] = apikey
  headers["Authorization"] = "Bearer " .. apikey
  return wrk.format("GET", string.format(path, ids[math.random(1, #ids)]), headers)
end
