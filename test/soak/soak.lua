-- wrk script for test/soak/soak.sh: POSTs $BODY_FILE to the target and checks every answer: status
-- 200 and the request's uid echoed. Prints one SOAK line with the totals of all threads.
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
local body = f:read("*a")
f:close()
local uid = assert(os.getenv("EXPECT_UID"))
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  responses, non200, badBody = 0, 0, 0
end

function response(status, headers, answer)
  responses = responses + 1
  if status ~= 200 then non200 = non200 + 1 end
  if not string.find(answer, '"uid":"' .. uid .. '"', 1, true) then badBody = badBody + 1 end
end

function done(summary, latency, requests)
  local r, n, b = 0, 0, 0
  for _, t in ipairs(threads) do
    r = r + t:get("responses")
    n = n + t:get("non200")
    b = b + t:get("badBody")
  end
  local e = summary.errors
  io.write(string.format(
    "SOAK requests=%d responses=%d non200=%d bad_body=%d connect=%d read=%d write=%d timeout=%d " ..
    "status=%d p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, r, n, b, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.max))
end
