-- revoke_token.lua: deletes the user's token (DRF: token.delete()). The
-- next obtain-token creates a new one.
--
-- KEYS[1] authtoken:username:<name>
-- Returns 1 when a token was removed, 0 when the user had none;
-- REFUSED: no such user
local uid = redis.call('GET', KEYS[1])
if not uid then
  return redis.error_reply('REFUSED: no such user')
end
local user_key = 'authtoken:user:' .. uid
local digest = redis.call('HGET', user_key, 'token')
if not digest then
  return 0
end
redis.call('DEL', 'authtoken:token:' .. digest)
redis.call('HDEL', user_key, 'token', 'token_sealed', 'token_created')
redis.call('PUBLISH', 'authtoken:revocations',
             digest .. ' ' .. redis.call('INCR', 'authtoken:revocation-seq'))
return 1
