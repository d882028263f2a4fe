-- Write the run's latency percentiles (ms) and counts as one JSON line to the file named
-- by $WRK_LATENCY_FILE: wrk's --latency table has no p95. Requests are wrk's default
-- (the URL and -H headers), so the script adds no per-request Lua work.
function done(summary, latency, requests)
  local path = os.getenv("WRK_LATENCY_FILE")
  if not path then return end
  local out = io.open(path, "w")
  local e = summary.errors
  out:write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_ms": %.3f, "p90_ms": %.3f, "p95_ms": %.3f, ' ..
    '"p99_ms": %.3f, "max_ms": %.3f, "mean_ms": %.3f, "status_errors": %d, ' ..
    '"socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000, e.status,
    e.connect + e.read + e.write + e.timeout))
  out:close()
end
