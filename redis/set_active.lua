-- set_active.lua: flips is_active and, in the same step, the `active` copy
-- in the user's token record, so nginx answers "User inactive or deleted."
-- from the very next lookup (and caches are told to drop the entry).
--
-- KEYS[1] authtoken:username:<name>
-- ARGV[1] '1' | '0'
-- Returns 1 when something changed, 0 when it already was so;
-- REFUSED: no such user
local uid = redis.call('GET', KEYS[1])
if not uid then
  return redis.error_reply('REFUSED: no such user')
end
local user_key = 'authtoken:user:' .. uid
local cur = redis.call('HMGET', user_key, 'is_active', 'token')
if cur[1] == ARGV[1] then
  return 0
end
redis.call('HSET', user_key, 'is_active', ARGV[1])
if cur[2] then
  redis.call('HSET', 'authtoken:token:' .. cur[2], 'active', ARGV[1])
  redis.call('PUBLISH', 'authtoken:revocations',
             cur[2] .. ' ' .. redis.call('INCR', 'authtoken:revocation-seq'))
end
return 1
