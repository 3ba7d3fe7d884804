-- GET one of KEYS small objects at random: PATH_TEMPLATE has one %d.
local template = os.getenv("PATH_TEMPLATE")
local keys = tonumber(os.getenv("KEYS") or "1000")
request = function()
  return wrk.format("GET", string.format(template, math.random(0, keys - 1)))
end
