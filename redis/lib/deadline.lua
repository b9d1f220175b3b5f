-- Prepended to every script in redis/ by the issuer (ScriptLibrary), which
-- passes its deadline as an extra first argument: the moment, in
-- milliseconds of this server's own clock (TIME), after which the caller
-- has stopped waiting for the reply. A script that only gets to run later
-- (Redis was paused, swapping, or behind a slow command) changes nothing,
-- so a write the caller reported as timed out is never applied behind its
-- back. The script itself sees its own arguments from ARGV[1] on.
do
  local deadline = tonumber(table.remove(ARGV, 1))
  local now = redis.call('TIME')
  local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  if deadline == nil or now_ms > deadline then
    return redis.error_reply('LATE: the caller stopped waiting before this script ran')
  end
end
