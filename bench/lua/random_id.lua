-- GET a path with a random id from [lo, hi]: args: template lo hi token
-- (the template holds "{id}", e.g. /api/v1/accounts/{id}/entries?limit=50)
function setup(thread)
end

function init(args)
  template = args[1]
  lo = tonumber(args[2])
  hi = tonumber(args[3])
  token = args[4]
  math.randomseed(os.time() * 1000 + math.floor(os.clock() * 1000000))
end

function request()
  local id = math.random(lo, hi)
  local path = string.gsub(template, "{id}", tostring(id))
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. token}, nil)
end
