-- The same request over and over (client credentials, userinfo, introspection, discovery, JWKS).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

function init(args)
   bench_args(args)
end
