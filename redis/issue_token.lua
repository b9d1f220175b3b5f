-- issue_token.lua: DRF's Token.objects.get_or_create(user=user), and
-- drf_create_token -r (regenerate). The caller brings a fresh candidate
-- (digest and sealed key); in 'get' mode it is used only when the user has
-- no token, so two concurrent obtains both answer the one token that won.
-- In 'reset' mode the old record is deleted and the new one written in the
-- same step: the old key fails and the new one works at once.
--
-- A login passes what its password check saw (ARGV[5..7]): the token is
-- issued only if none of it changed while the password was being hashed,
-- a compare-and-set. A password changed, the user deactivated, deleted or
-- re-created under the same name, or the token it saw revoked or replaced
-- answers REFUSED: credentials changed.
--
-- KEYS[1] authtoken:username:<name>
-- ARGV: mode ('get' | 'reset'), digest, sealed, created; then optionally
--   the uid, the verified encoded password, and the token digest the check
--   saw ('' = the user had no token)
-- Returns {digest, sealed, created (1 = the candidate was stored),
--   replaced (1 = an old token record was deleted for it)};
-- REFUSED: no such user; REFUSED: credentials changed
local uid = redis.call('GET', KEYS[1])
if not uid then
  return redis.error_reply('REFUSED: no such user')
end
local user_key = 'authtoken:user:' .. uid
local cur = redis.call('HMGET', user_key, 'token', 'token_sealed', 'username',
                       'is_active', 'password')
if ARGV[5] then
  if uid ~= ARGV[5] or cur[5] ~= ARGV[6] or cur[4] ~= '1'
     or (ARGV[7] ~= '' and cur[1] ~= ARGV[7]) then
    return redis.error_reply('REFUSED: credentials changed')
  end
end
if ARGV[1] == 'get' and cur[1] and cur[2] then
  return {cur[1], cur[2], 0}
end

if cur[1] then
  redis.call('DEL', 'authtoken:token:' .. cur[1])
  redis.call('PUBLISH', 'authtoken:revocations',
             cur[1] .. ' ' .. redis.call('INCR', 'authtoken:revocation-seq'))
end
redis.call('HSET', user_key, 'token', ARGV[2], 'token_sealed', ARGV[3],
           'token_created', ARGV[4])
redis.call('HSET', 'authtoken:token:' .. ARGV[2], 'uid', uid, 'user', cur[3],
           'active', cur[4] or '1', 'expires', '0', 'created', ARGV[4])
redis.call('PUBLISH', 'authtoken:revocations',
             ARGV[2] .. ' ' .. redis.call('INCR', 'authtoken:revocation-seq'))
return {ARGV[2], ARGV[3], 1, cur[1] and 1 or 0}
