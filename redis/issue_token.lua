-- issue_token.lua: DRF's Token.objects.get_or_create(user=user), and
-- drf_create_token -r (regenerate). The caller brings a fresh candidate
-- (digest and sealed key); in 'get' mode it is used only when the user has
-- no token, so two concurrent obtains both answer the one token that won.
-- In 'reset' mode the old record is deleted and the new one written in the
-- same step: the old key fails and the new one works at once.
--
-- KEYS[1] authtoken:username:<name>
-- ARGV: mode ('get' | 'reset'), digest, sealed, created
-- Returns {digest, sealed, created (1 = the candidate was stored)};
-- REFUSED: no such user
local uid = redis.call('GET', KEYS[1])
if not uid then
  return redis.error_reply('REFUSED: no such user')
end
local user_key = 'authtoken:user:' .. uid
local cur = redis.call('HMGET', user_key, 'token', 'token_sealed', 'username',
                       'is_active')
if ARGV[1] == 'get' and cur[1] and cur[2] then
  return {cur[1], cur[2], 0}
end

if cur[1] then
  redis.call('DEL', 'authtoken:token:' .. cur[1])
  redis.call('PUBLISH', 'authtoken:revocations', cur[1])
end
redis.call('HSET', user_key, 'token', ARGV[2], 'token_sealed', ARGV[3],
           'token_created', ARGV[4])
redis.call('HSET', 'authtoken:token:' .. ARGV[2], 'uid', uid, 'user', cur[3],
           'active', cur[4] or '1', 'expires', '0', 'created', ARGV[4])
redis.call('PUBLISH', 'authtoken:revocations', ARGV[2])
return {ARGV[2], ARGV[3], 1}
