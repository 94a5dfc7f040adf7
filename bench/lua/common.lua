-- Shared by every bench script: arguments, response checks, and one JSON result line.
--
-- Arguments come after `--` on wrk's command line as key=value:
--   method=POST path=/oidc/token auth=<Authorization header> body=<form body>
--   expect=<substring>[|<substring>...]   every 2xx body must contain each of them
-- A response counts as an error when its status is not 2xx, or when it is 2xx and its
-- body lacks an expected substring (bad_body).

threads = {}
local next_tid = 0

function setup(thread)
   thread:set("tid", next_tid)
   next_tid = next_tid + 1
   table.insert(threads, thread)
end

non2xx = 0
bad_body = 0
exhausted = 0
local expected = {}

function bench_args(args)
   local a = {}
   -- wrk numbers the script's arguments from 0.
   for i = 0, #args do
      local v = args[i]
      if v then
         local key, value = v:match("^([%w_]+)=(.*)$")
         if key then a[key] = value end
      end
   end
   wrk.method = a.method or "GET"
   wrk.path = a.path or "/"
   wrk.headers["Accept"] = "application/json"
   if a.auth and a.auth ~= "" then wrk.headers["Authorization"] = a.auth end
   if a.cookie and a.cookie ~= "" then wrk.headers["Cookie"] = a.cookie end
   if a.body and a.body ~= "" then
      wrk.body = a.body
      wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
   end
   if a.expect and a.expect ~= "" then
      for part in string.gmatch(a.expect, "[^|]+") do table.insert(expected, part) end
   end
   return a
end

function response(status, headers, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
   elseif #expected > 0 then
      for _, part in ipairs(expected) do
         if not body or not string.find(body, part, 1, true) then
            bad_body = bad_body + 1
            return
         end
      end
   end
end

function done(summary, latency, requests)
   local n2, bad, exh = 0, 0, 0
   for _, t in ipairs(threads) do
      n2 = n2 + (t:get("non2xx") or 0)
      bad = bad + (t:get("bad_body") or 0)
      exh = exh + (t:get("exhausted") or 0)
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
      '"status": %d, "timeout": %d, "non2xx": %d, "bad_body": %d, "exhausted": %d, ' ..
      '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
      summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout, n2, bad, exh,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
