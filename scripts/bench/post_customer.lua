-- POST /v1/customers with a unique phone number per request.
local counter = 0
local threads = {}
setup = function(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end
request = function()
  counter = counter + 1
  local n = (thread_id or 0) * 1000000 + counter
  local body = string.format('{"phone":"+1%03d%07d","name":"Bench %d"}', 200 + math.floor(n / 10000000) % 700, n % 10000000, n)
  return wrk.format("POST", "/v1/customers", {
    ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN"),
    ["Content-Type"] = "application/json",
  }, body)
end
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
