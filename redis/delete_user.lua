-- delete_user.lua: removes the user and its token record together, so the
-- key answers "Invalid token." from the next lookup on.
--
-- KEYS[1] authtoken:username:<name>   KEYS[2] authtoken:users
-- Returns the deleted uid; REFUSED: no such user
local uid = redis.call('GET', KEYS[1])
if not uid then
  return redis.error_reply('REFUSED: no such user')
end
local user_key = 'authtoken:user:' .. uid
local digest = redis.call('HGET', user_key, 'token')
if digest then
  redis.call('DEL', 'authtoken:token:' .. digest)
  redis.call('PUBLISH', 'authtoken:revocations',
             digest .. ' ' .. redis.call('INCR', 'authtoken:revocation-seq'))
end
redis.call('DEL', user_key, KEYS[1])
redis.call('ZREM', KEYS[2], uid)
return tonumber(uid)
