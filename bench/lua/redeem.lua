-- POST a pay-code redemption per request, each with a FRESH one-time pay code.
-- Arguments: path codes_file tills_file mode run_tag threads
--   codes_file: one valid pay code per line (minted by bench/redemption.py just before the
--               run); wrk thread t of T takes lines t, t+T, t+2T, ... so no code is sent twice
--   tills_file: one merchant per line: "token user_id merchant_id offer_id"
--   mode:       "app" sends the operator's bearer token; "raw" sends X-Bench-User and
--               X-Bench-Merchant for the bare baseline (which does the same SQL, no JWT)
-- Requests go round-robin over the merchants; a unique Idempotency-Key per request.
local threads = {}
local counter = 0
local thread_id = 0
local codes = {}
local tills = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  path = args[1]
  mode = args[4]
  tag = args[5]
  thread_id = tid
  nthreads = tonumber(args[6])
  local step = nthreads
  local n = 0
  for line in io.lines(args[2]) do
    if line ~= "" then
      n = n + 1
      if (n - thread_id) % step == 0 then table.insert(codes, line) end
    end
  end
  for line in io.lines(args[3]) do
    local token, user, merchant, offer = line:match("^(%S+) (%d+) (%d+) (%d+)$")
    if token then table.insert(tills, {token = token, user = user, merchant = merchant,
                                        offer = offer}) end
  end
end

function request()
  counter = counter + 1
  local code = codes[counter]
  if code == nil then code = "EXHAUSTED" end  -- refused with 422: the run is then rejected
  local till = tills[((counter * nthreads + thread_id) % #tills) + 1]
  local body = '{"pay_code": "' .. code .. '", "offer_id": ' .. till.offer ..
               ', "quantity": 1, "order_ref": "B-' .. thread_id .. '-' .. counter .. '"}'
  local headers = {
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = tag .. "-" .. thread_id .. "-" .. counter,
  }
  if mode == "raw" then
    headers["X-Bench-User"] = till.user
    headers["X-Bench-Merchant"] = till.merchant
  else
    headers["Authorization"] = "Bearer " .. till.token
  end
  return wrk.format("POST", path, headers, body)
end
