-- wrk script for tools/bench.
--   wrk ... -s wrk.lua -- keys <file>      Authorization: Token <random key from file>
--   wrk ... -s wrk.lua -- seq <file> <T> [<n>]
--                                          same, but thread i of T walks keys
--                                          in order: n*T+i, n*T+i+T, ...
--                                          (fills a cache with every key)
--   wrk ... -s wrk.lua -- header <value>   a fixed Authorization header
-- The key file is read once per wrk thread (every thread has its own Lua
-- state) and every request is formatted then, so that request() costs only
-- a random index: wrk on one core stays well ahead of the servers. done()
-- prints one machine-readable line for tools/bench.

local counter = 0

function setup(thread)
    thread:set("id", counter)
    counter = counter + 1
end

local mode, arg
local reqs, nreqs = {}, 0
local pos, step = 0, 1

function init(args)
    mode, arg = args[1], args[2]
    if mode == "keys" or mode == "seq" then
        for line in io.lines(arg) do
            nreqs = nreqs + 1
            reqs[nreqs] = wrk.format(nil, nil,
                                     { Authorization = "Token " .. line })
        end
        if nreqs == 0 then error("no keys in " .. arg) end
    elseif mode == "header" then
        reqs[1] = wrk.format(nil, nil, { Authorization = arg })
        nreqs = 1
    else
        error("wrk.lua: unknown mode " .. tostring(mode))
    end
    -- a different random sequence in every thread
    math.randomseed(os.time() * 1000 + (id or 0) * 7919 + nreqs)
    for _ = 1, 10 do math.random() end
    step = tonumber(args[3]) or 1
    pos = ((tonumber(args[4]) or 0) * step + (id or 0)) % nreqs + 1
end

local random = math.random

function request()
    if mode == "seq" then
        local r = reqs[pos]
        pos = pos + step
        if pos > nreqs then pos = pos - nreqs end
        return r
    end
    return reqs[random(nreqs)]
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "BENCH requests=%d duration_us=%d bytes=%d p50_us=%d p90_us=%d p99_us=%d "
        .. "max_us=%d connect=%d read=%d write=%d timeout=%d status=%d\n",
        summary.requests, summary.duration, summary.bytes,
        latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency.max, e.connect, e.read, e.write, e.timeout, e.status))
end
