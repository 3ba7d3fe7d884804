-- Password sign-ins of one user: POST /auth/v1/token?grant_type=password.
local apikey = os.getenv("APIKEY")
local body = string.format('{"email":"%s","password":"%s"}', os.getenv("EMAIL"), os.getenv("PASSWORD"))
request = function()
  return wrk.format("POST", os.getenv("TOKEN_PATH"), {apikey = apikey, ["Content-Type"] = "application/json"}, body)
end
