-- wrk script for t/530-reload-kill-under-load.t and tools/soak: every
-- request carries a token of a known class, and every response is counted
-- per class and verdict, so that a wrong answer for one class cannot hide
-- among the right answers for another.
--
--   wrk ... -s verdicts.lua <url> -- <tokens file> [<path>]
--
-- The tokens file has one "<class> <key>" per line (class: a word such as
-- valid, invalid, inactive, churn). A request sends
--   Authorization: Token <key>
--   X-Class: <class>
-- and nginx must echo the class back (add_header X-Class $http_x_class
-- always): wrk's response() does not say which request a response answers,
-- so the echo is how a response finds its class.
--
-- Verdicts: the status, and for a 401 which DRF body it carries:
--   200, 401-invalid ("Invalid token."), 401-inactive ("User inactive or
--   deleted."), 401-other, 503, ... ; a response without X-Class counts
--   under class "?".
--
-- done() prints one line "VERDICTS <json>": wrk's own summary (requests,
-- socket errors by kind: connect, read, write, timeout; status = wrk's count
-- of statuses > 399), latency percentiles in microseconds, and the counts
-- as { "<class> <verdict>": n }.

local threads = {}
local counter = 0

function setup(thread)
    thread:set("id", counter)
    counter = counter + 1
    table.insert(threads, thread)
end

local reqs, nreqs = {}, 0
counts = {}

function init(args)
    local file, path = args[1], args[2] or wrk.path
    if not file then error("verdicts.lua: usage: -- <tokens file> [<path>]") end
    for line in io.lines(file) do
        local class, key = line:match("^(%S+)%s+(%S+)")
        if class then
            nreqs = nreqs + 1
            reqs[nreqs] = wrk.format("GET", path, {
                ["Authorization"] = "Token " .. key,
                ["X-Class"] = class,
            })
        end
    end
    if nreqs == 0 then error("verdicts.lua: no tokens in " .. file) end
    math.randomseed(os.time() * 1000 + (id or 0) * 7919 + nreqs)
    for _ = 1, 10 do math.random() end
end

local random = math.random

function request()
    return reqs[random(nreqs)]
end

local INVALID = '{"detail":"Invalid token."}'
local INACTIVE = '{"detail":"User inactive or deleted."}'

function response(status, headers, body)
    local class = headers["X-Class"] or headers["x-class"] or "?"
    local verdict = tostring(status)
    if status == 401 then
        if body == INVALID then
            verdict = "401-invalid"
        elseif body == INACTIVE then
            verdict = "401-inactive"
        else
            verdict = "401-other"
        end
    end
    local k = class .. " " .. verdict
    counts[k] = (counts[k] or 0) + 1
end

local function json_string(s)
    return '"' .. s:gsub('[%c"\\]', function(c)
        return string.format("\\u%04x", c:byte())
    end) .. '"'
end

function done(summary, latency, requests)
    local total = {}
    for _, t in ipairs(threads) do
        local c = t:get("counts")
        if c then
            for k, v in pairs(c) do total[k] = (total[k] or 0) + v end
        end
    end
    local parts = {}
    for k, v in pairs(total) do
        parts[#parts + 1] = json_string(k) .. ":" .. string.format("%d", v)
    end
    table.sort(parts)
    local e = summary.errors
    io.write(string.format(
        'VERDICTS {"requests":%d,"duration_us":%d,"bytes":%d,'
        .. '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d},'
        .. '"latency_us":{"p50":%d,"p99":%d,"max":%d},"counts":{%s}}\n',
        summary.requests, summary.duration, summary.bytes,
        e.connect, e.read, e.write, e.timeout, e.status,
        latency:percentile(50), latency:percentile(99), latency.max,
        table.concat(parts, ",")))
end
