-- POST a check-in per request, from DISTINCT residents on one event code.
-- Arguments: path residents_file mode code run_tag threads
--   residents_file: "resident_id token" per line; wrk thread t of T takes lines t, t+T, ...
--                   and sends each resident once (wrapping only if the file runs out, which
--                   bench/events_checkin.py reports)
--   mode:           "app" sends the resident's bearer token; "raw" sends resident_id in the
--                   body for the bare baseline (same SQL, no JWT, no Flask)
--   code:           the event's current check-in link (valid for this step and the next)
local threads = {}
local counter = 0
local thread_id = 0
local residents = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  path = args[1]
  mode = args[3]
  code = args[4]
  tag = args[5]
  thread_id = tid
  local step = tonumber(args[6])
  local n = 0
  for line in io.lines(args[2]) do
    local id, token = line:match("^(%d+) (%S+)$")
    if id then
      n = n + 1
      if (n - thread_id) % step == 0 then table.insert(residents, {id = id, token = token}) end
    end
  end
end

function request()
  counter = counter + 1
  local who = residents[(counter - 1) % #residents + 1]
  local body = '{"code": "' .. code .. '", "nonce": "' .. tag .. '-' .. thread_id .. '-' ..
    counter .. '", "scanned_at": "2026-06-01T02:00:00+00:00"'
  local headers = {["Content-Type"] = "application/json"}
  if mode == "raw" then
    body = body .. ', "resident_id": ' .. who.id
  else
    headers["Authorization"] = "Bearer " .. who.token
  end
  return wrk.format("POST", path, headers, body .. "}")
end
