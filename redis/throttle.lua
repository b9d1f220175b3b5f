-- throttle.lua: sliding-window counters of failed logins, one sorted set
-- per subject (authtoken:throttle:user:<name>, authtoken:throttle:addr:<ip>)
-- scored by the time of each failure. Kept in Redis so every daemon
-- instance counts together; Redis's clock (TIME) is the one clock.
--
-- KEYS: the throttle keys to look at
-- ARGV[1] 'check' | 'hit'; then per key: limit, window in ms; last: a nonce
--   that makes each failure a distinct member
-- 'check' returns how many ms until every key allows another attempt (0 =
-- allowed now), as DRF's SimpleRateThrottle.wait() would; 'hit' records one
-- failure in every key and returns 0.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if ARGV[1] == 'hit' then
    redis.call('ZADD', key, now, now .. ':' .. ARGV[#ARGV])
    redis.call('PEXPIRE', key, window)
  else
    local n = redis.call('ZCARD', key)
    if n >= limit then
      -- Another attempt is allowed once all but limit-1 failures have left
      -- the window: that is when the (n-limit)th oldest one leaves.
      local entry = redis.call('ZRANGE', key, n - limit, n - limit,
                               'WITHSCORES')
      local w = window - (now - tonumber(entry[2]))
      if w > wait then
        wait = w
      end
    end
  end
end
return wait
