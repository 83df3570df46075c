-- wrk script for bench/clicks.py: GET /t/{code} (or the bench-only /bench/302).
--
-- wrk ... -s bench/clicks.lua URL -- CODES
--   CODES   comma-separated link codes; empty: request the URL's own path as it is
--
-- Each request takes the next code, a varying visitor IP (X-Forwarded-For, which the
-- benchmark's server trusts), a browser user agent and sub ids that vary per request, so
-- the uniqueness lookup and the insert do real work. done() prints "BENCH_JSON {...}".

local threads = {}

function setup(thread)
   thread:set("tid", #threads + 1)
   table.insert(threads, thread)
end

local codes = {}
local counter = 0
status_302, status_other = 0, 0

function init(args)
   for code in string.gmatch(args[1] or "", "[^,]+") do
      table.insert(codes, code)
   end
   math.randomseed(tid)
end

local agent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 " ..
   "(KHTML, like Gecko) Chrome/124.0 Safari/537.36"

function request()
   counter = counter + 1
   local path = wrk.path
   if #codes > 0 then
      local code = codes[(counter % #codes) + 1]
      path = string.format("/t/%s?sub1=src%d&sub2=c%d&sub3=%d-%d&utm_source=bench",
         code, counter % 7, counter % 31, tid, counter)
   end
   local ip = string.format("10.%d.%d.%d", tid, math.random(0, 255), math.random(1, 254))
   return wrk.format("GET", path, {
      ["User-Agent"] = agent,
      ["X-Forwarded-For"] = ip,
      ["CF-IPCountry"] = "GB",
   })
end

function response(status, headers, body)
   if status == 302 then
      status_302 = status_302 + 1
   else
      status_other = status_other + 1
   end
end

function done(summary, latency, requests)
   local ok, other = 0, 0
   for _, thread in ipairs(threads) do
      ok = ok + thread:get("status_302")
      other = other + thread:get("status_other")
   end
   io.write(string.format(
      'BENCH_JSON {"requests": %d, "duration_us": %d, "status_302": %d, "status_other": %d, ' ..
      '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
      summary.requests, summary.duration, ok, other,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
