-- create_user.lua: one new user, and its token when auto_create_token is on
-- (the seed's post_save signal), in one step: nginx never sees a token
-- whose user does not exist, and two concurrent creations of one username
-- cannot both win (the script runs alone, EXISTS then SET).
--
-- KEYS[1] authtoken:username:<name>   KEYS[2] authtoken:next-uid
-- KEYS[3] authtoken:users             KEYS[4] authtoken:schema
-- ARGV: username, password, is_active, is_staff, is_superuser, email,
--       date_joined, token digest ('' = no token), token_sealed,
--       token_created
-- Returns the new uid; REFUSED: username taken | schema ...
local schema = redis.call('GET', KEYS[4])
if schema and schema ~= '1' then
  return redis.error_reply('REFUSED: schema version ' .. schema .. ' is not 1')
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.error_reply('REFUSED: username taken')
end
redis.call('SET', KEYS[4], '1')

-- next-uid may lag behind uids written by an import; skip taken ones.
local uid
repeat
  uid = redis.call('INCR', KEYS[2])
until redis.call('EXISTS', 'authtoken:user:' .. uid) == 0

local user_key = 'authtoken:user:' .. uid
redis.call('HSET', user_key, 'username', ARGV[1], 'password', ARGV[2],
           'is_active', ARGV[3], 'is_staff', ARGV[4], 'is_superuser', ARGV[5],
           'email', ARGV[6], 'date_joined', ARGV[7])
redis.call('SET', KEYS[1], uid)
redis.call('ZADD', KEYS[3], uid, uid)

if ARGV[8] ~= '' then
  redis.call('HSET', user_key, 'token', ARGV[8], 'token_sealed', ARGV[9],
             'token_created', ARGV[10])
  redis.call('HSET', 'authtoken:token:' .. ARGV[8], 'uid', uid,
             'user', ARGV[1], 'active', ARGV[3], 'expires', '0',
             'created', ARGV[10])
  -- A cache may hold a negative entry for this digest.
  redis.call('PUBLISH', 'authtoken:revocations',
             ARGV[8] .. ' ' .. redis.call('INCR', 'authtoken:revocation-seq'))
end
return uid
