-- wrk script: POST an Anthropic Messages request body read from a file.
--
--   wrk -s anthropic_messages.lua URL -- BODY_FILE [DELTA_INTERVAL_MS]
--
-- BODY_FILE is request.json (JSON answer) or request_stream.json (streamed answer); with
-- DELTA_INTERVAL_MS the mock upstream pauses that long before each streamed delta.
-- done() prints one line "WRK_JSON {...}" (latencies in microseconds) for benchlib/wrk.py to read.

function init(args)
  local file = assert(io.open(args[1], "rb"), "cannot read the request body file " .. tostring(args[1]))
  local body = file:read("*a"):gsub("%s+$", "")
  file:close()
  local headers = {
    ["content-type"] = "application/json",
    ["x-api-key"] = "sk-ant-bench-not-a-real-key",
    ["anthropic-version"] = "2023-06-01",
    ["user-agent"] = "ccproxy-bench/1.0",
  }
  if args[2] ~= nil then
    headers["x-mock-delta-interval-ms"] = args[2]
  end
  prepared = wrk.format("POST", nil, headers, body)
end

function request()
  return prepared
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
