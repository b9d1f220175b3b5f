-- import_django.lua: the whole of one `manage.py dumpdata auth.user
-- authtoken.token` file in one step, so a failed import leaves nothing
-- behind. authtokenctl has validated the file and sealed the keys; this
-- script checks the import against what Redis holds (first, before any
-- write) and then writes. The file wins for every field it carries; users
-- and tokens it does not mention are left alone. Running it twice changes
-- nothing: unchanged users are not rewritten and a token whose digest is
-- already the user's keeps its sealed form.
--
-- KEYS[1] authtoken:users   KEYS[2] authtoken:next-uid
-- KEYS[3] authtoken:schema
-- ARGV[1] JSON array of {uid, username, password, is_active, is_staff,
--   is_superuser, email, date_joined, last_login, token, token_sealed,
--   token_created} (all strings; token '' = none in the file)
-- Returns {created, updated, unchanged}; REFUSED: <conflict>
local channel = 'authtoken:revocations'
local schema = redis.call('GET', KEYS[3])
if schema and schema ~= '1' then
  return redis.error_reply('REFUSED: schema version ' .. schema .. ' is not 1')
end
local users = cjson.decode(ARGV[1])

-- Pass 1: refuse conflicts with existing data before writing anything.
for _, u in ipairs(users) do
  local owner = redis.call('GET', 'authtoken:username:' .. u.username)
  if owner and owner ~= u.uid then
    return redis.error_reply('REFUSED: username "' .. u.username ..
                             '" already belongs to uid ' .. owner)
  end
  local name = redis.call('HGET', 'authtoken:user:' .. u.uid, 'username')
  if name and name ~= u.username then
    return redis.error_reply('REFUSED: uid ' .. u.uid .. ' is already user "'
                             .. name .. '"')
  end
  if u.token ~= '' then
    local holder = redis.call('HGET', 'authtoken:token:' .. u.token, 'uid')
    if holder and holder ~= u.uid then
      return redis.error_reply('REFUSED: the token of "' .. u.username ..
                               '" already belongs to uid ' .. holder)
    end
  end
end

redis.call('SET', KEYS[3], '1')
local fields = {'username', 'password', 'is_active', 'is_staff',
                'is_superuser', 'email', 'date_joined', 'last_login'}
local created, updated, unchanged = 0, 0, 0
local max_uid = tonumber(redis.call('GET', KEYS[2]) or '0')

for _, u in ipairs(users) do
  local user_key = 'authtoken:user:' .. u.uid
  local exists = redis.call('EXISTS', user_key) == 1
  local cur = redis.call('HMGET', user_key, 'username', 'password',
                         'is_active', 'is_staff', 'is_superuser', 'email',
                         'date_joined', 'last_login', 'token')
  local changed = not exists
  for i, f in ipairs(fields) do
    if (cur[i] or '') ~= u[f] then
      changed = true
    end
  end
  local token = cur[9]
  if u.token ~= '' and token ~= u.token then
    changed = true
  end

  if changed then
    for _, f in ipairs(fields) do
      if u[f] == '' and (f == 'last_login' or f == 'email') then
        redis.call('HDEL', user_key, f)
      else
        redis.call('HSET', user_key, f, u[f])
      end
    end
    redis.call('SET', 'authtoken:username:' .. u.username, u.uid)
    redis.call('ZADD', KEYS[1], u.uid, u.uid)

    if u.token ~= '' and token ~= u.token then
      if token then
        redis.call('DEL', 'authtoken:token:' .. token)
        redis.call('PUBLISH', channel,
                   token .. ' ' .. redis.call('INCR', 'authtoken:revocation-seq'))
      end
      redis.call('HSET', user_key, 'token', u.token, 'token_sealed',
                 u.token_sealed, 'token_created', u.token_created)
      token = u.token
      redis.call('HSET', 'authtoken:token:' .. token, 'uid', u.uid,
                 'user', u.username, 'active', u.is_active, 'expires', '0',
                 'created', u.token_created)
      redis.call('PUBLISH', channel,
                   token .. ' ' .. redis.call('INCR', 'authtoken:revocation-seq'))
    elseif token then
      -- Same token (or none in the file): keep the record in step with
      -- the user's is_active.
      if redis.call('HGET', 'authtoken:token:' .. token, 'active')
         ~= u.is_active then
        redis.call('HSET', 'authtoken:token:' .. token, 'active', u.is_active)
        redis.call('PUBLISH', channel,
                   token .. ' ' .. redis.call('INCR', 'authtoken:revocation-seq'))
      end
    end
    if exists then
      updated = updated + 1
    else
      created = created + 1
    end
  else
    unchanged = unchanged + 1
  end
  if tonumber(u.uid) > max_uid then
    max_uid = tonumber(u.uid)
  end
end

-- New users created later must not reuse an imported uid.
redis.call('SET', KEYS[2], max_uid)
return {created, updated, unchanged}
