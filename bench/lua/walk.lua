-- Each request spends one pre-created credential (authorization code or refresh token):
-- `<prefix><index:08d>` replaces @@ in the body. Thread t walks its own block
-- [start + t*per_thread, start + (t+1)*per_thread); past its end it sends "exhausted"
-- (an error, counted in `exhausted`: raise --max-rate).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local before, after, prefix, index, stop

function init(args)
   local a = bench_args(args)
   local at = string.find(a.body, "@@", 1, true)
   before = string.sub(a.body, 1, at - 1)
   after = string.sub(a.body, at + 2)
   prefix = a.prefix
   local per = tonumber(a.per_thread)
   index = tonumber(a.start) + tid * per
   stop = index + per
end

function request()
   local credential
   if index < stop then
      credential = string.format("%s%08d", prefix, index)
      index = index + 1
   else
      credential = "exhausted"
      exhausted = exhausted + 1
   end
   return wrk.format(nil, nil, nil, before .. credential .. after)
end
