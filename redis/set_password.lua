-- set_password.lua: stores a new encoded password. With ARGV[2] set it is a
-- compare-and-set: the re-hash after a login with an old hasher must not
-- overwrite a password an admin changed in the meantime. Tokens are left
-- alone, as in Django (changing a password does not touch DRF tokens).
--
-- KEYS[1] authtoken:username:<name>
-- ARGV[1] new encoded password, ARGV[2] expected current one ('' = any)
-- Returns 1 when stored, 0 when the current hash was not the expected one;
-- REFUSED: no such user
local uid = redis.call('GET', KEYS[1])
if not uid then
  return redis.error_reply('REFUSED: no such user')
end
local user_key = 'authtoken:user:' .. uid
if ARGV[2] ~= '' and redis.call('HGET', user_key, 'password') ~= ARGV[2] then
  return 0
end
redis.call('HSET', user_key, 'password', ARGV[1])
return 1
