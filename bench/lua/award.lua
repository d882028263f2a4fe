-- POST an award per request: a resident id drawn from [lo, hi], a unique Idempotency-Key
-- (run tag + thread id + per-thread counter). Arguments: path lo hi token rule run_tag
local threads = {}
local counter = 0
local thread_id = 0

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  path = args[1]
  lo = tonumber(args[2])
  hi = tonumber(args[3])
  token = args[4]
  rule = args[5]
  tag = args[6]
  thread_id = tid
  math.randomseed(os.time() * 1000 + tid)
end

function request()
  counter = counter + 1
  local resident = math.random(lo, hi)
  local body = '{"resident_id": ' .. resident .. ', "rule_code": "' .. rule .. '", "quantity": 1}'
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = tag .. "-" .. thread_id .. "-" .. counter,
  }
  return wrk.format("POST", path, headers, body)
end
