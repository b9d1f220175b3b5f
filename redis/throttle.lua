-- throttle.lua: the failed-login throttle, with attempts reserved before the
-- password is hashed. Kept in Redis so every daemon instance counts
-- together; Redis's clock (TIME) is the one clock.
--
-- Each subject (a (username, address) pair, an address, a username) has
--   a window: a sorted set of attempts scored by their start time (ms),
--     holding failed logins and the attempts still in flight;
--   an in-flight set: the attempts still in flight, scored by the time
--     after which they are presumed dead (their daemon crashed).
--
-- KEYS: per subject, its window key then its in-flight key
-- ARGV[1] 'reserve' | 'succeed' | 'fail'
-- ARGV[2] the attempt's member ('reserve': a nonce to build it from)
-- 'reserve' also takes ARGV[3] the in-flight lifetime (ms), ARGV[4] the
--   first progressive delay (ms), ARGV[5] the longest (ms), then per
--   subject: kind ('hard' | 'delay'), limit (0 = no window), window (ms),
--   in-flight cap (0 = none).
--
-- 'reserve' returns {wait_ms, delay_ms, member}: wait_ms > 0 refuses the
--   attempt (a hard window is full, or too many attempts are in flight) and
--   records nothing; otherwise the attempt is recorded in every window and
--   in-flight set, and delay_ms is how long the caller waits before checking
--   the password (a full 'delay' window: limit's first failure waits
--   ARGV[4], each further one twice as long, up to ARGV[5]).
-- 'succeed' removes the attempt everywhere (successes do not count);
-- 'fail' keeps it in the windows, where it counts as a failed login, and
--   removes it from the in-flight sets. Both return 0.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local mode = ARGV[1]
local subjects = #KEYS / 2

if mode ~= 'reserve' then
  for i = 1, subjects do
    if mode == 'succeed' then
      redis.call('ZREM', KEYS[2 * i - 1], ARGV[2])
    end
    redis.call('ZREM', KEYS[2 * i], ARGV[2])
  end
  return 0
end

local lifetime = tonumber(ARGV[3])
local first_delay = tonumber(ARGV[4])
local max_delay = tonumber(ARGV[5])
local wait, delay = 0, 0
for i = 1, subjects do
  local window_key, flight_key = KEYS[2 * i - 1], KEYS[2 * i]
  local a = 5 + 4 * (i - 1)
  local kind, limit = ARGV[a + 1], tonumber(ARGV[a + 2])
  local window, cap = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  redis.call('ZREMRANGEBYSCORE', flight_key, '-inf', now)
  if cap > 0 and redis.call('ZCARD', flight_key) >= cap then
    if wait < 1000 then
      wait = 1000
    end
  end
  if limit > 0 then
    redis.call('ZREMRANGEBYSCORE', window_key, '-inf', now - window)
    local n = redis.call('ZCARD', window_key)
    if n >= limit and kind == 'hard' then
      -- Another attempt is allowed once all but limit-1 attempts have left
      -- the window: that is when the (n-limit)th oldest one leaves.
      local entry = redis.call('ZRANGE', window_key, n - limit, n - limit,
                               'WITHSCORES')
      local w = window - (now - tonumber(entry[2]))
      if w > wait then
        wait = w
      end
    elseif n >= limit then
      local d = first_delay * 2 ^ math.min(n - limit, 30)
      if d > max_delay then
        d = max_delay
      end
      if d > delay then
        delay = d
      end
    end
  end
end
if wait > 0 then
  return {wait, 0, ''}
end

local member = now .. ':' .. ARGV[2]
for i = 1, subjects do
  local window_key, flight_key = KEYS[2 * i - 1], KEYS[2 * i]
  local a = 5 + 4 * (i - 1)
  local limit, window = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  if limit > 0 then
    redis.call('ZADD', window_key, now, member)
    redis.call('PEXPIRE', window_key, window)
  end
  if tonumber(ARGV[a + 4]) > 0 then
    redis.call('ZADD', flight_key, now + lifetime, member)
    redis.call('PEXPIRE', flight_key, lifetime)
  end
end
return {wait, delay, member}
