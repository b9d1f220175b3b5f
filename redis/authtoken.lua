#!lua name=authtoken
-- The issuer's Redis Functions library (Redis 7's FUNCTION LOAD / FCALL):
-- every write that touches more than one key, as one function, so nginx
-- never sees half an operation. redis/SCHEMA.md documents the keys, the
-- functions and how authtokend and authtokenctl load this library.
--
-- Every function is called as
--   FCALL authtoken_<name> <numkeys> <keys...> <version> <deadline> <args...>
-- and takes its keys from KEYS, as the table of each function says: the
-- keys it derives from what it reads (the user record from the username
-- key, a token record from the user record) are built from KEY below.
--
-- <version> is this library's version as the caller loaded it (the SHA-1
-- of this file, written in for @LIBRARY_VERSION@ when it is loaded): a
-- caller whose library was replaced by another issuer's (of another
-- version) is told so (STALE), loads its own and calls again, instead of
-- running code it was not written for. <deadline> is the moment, in
-- milliseconds of this server's own clock (TIME), after which the caller
-- has stopped waiting for the reply: a function that only gets to run
-- later (Redis was paused, swapping, or behind a slow command) changes
-- nothing and answers LATE, so a write the caller reported as timed out
-- is never applied behind its back. A function sees its own arguments
-- from args[1] on.
--
-- A function refuses with the error reply 'REFUSED: <reason>' and has then
-- written nothing. Each one is short and bounded: a Redis function blocks
-- every other client while it runs.

local LIBRARY_VERSION = '@LIBRARY_VERSION@'

-- The key names, spelled here once for Lua; src/core/redis_keys.h spells
-- them for C++, and test_redis_keys fails unless the two agree exactly.
local SCHEMA_VERSION = '3'
-- The mark authtoken_migrate_tokens sets while it renames token records
-- from their hex name (versions 1 and 2) to version 3's (token_key).
local SCHEMA_MIGRATING = '3-partial'
local KEY = {
  schema = 'authtoken:schema',
  token = 'authtoken:token:',
  user = 'authtoken:user:',
  username = 'authtoken:username:',
  users = 'authtoken:users',
  next_uid = 'authtoken:next-uid',
  throttle = 'authtoken:throttle:',
  user_tokens = 'authtoken:user-tokens:',
  revocations = 'authtoken:revocations',
  revocation_seq = 'authtoken:revocation-seq',
  directory_id = 'authtoken:directory-id',
  outbox = 'authtoken:outbox',
  outbox_seq = 'authtoken:outbox-seq',
  outbox_acked = 'authtoken:outbox-acked',
  directory = 'authtoken:directory',
  heartbeat = 'authtoken:heartbeat',
}

-- The most tokens a user's set may hold (tokens_per_user = many), whatever
-- token_limit_per_user the caller passes: the bound on every walk over the
-- set (keys::kMaxTokensPerUser; test_redis_keys checks they agree).
local MAX_TOKENS_PER_USER = 1000

-- Refusals: refuse() leaves the function; register() turns it into the
-- error reply 'REFUSED: <why>'.
local Refused = {}
local function refuse(why)
  error(setmetatable({why = why}, Refused), 0)
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Registers authtoken_<name>: checks the caller's version and deadline
-- (and removes them from args), runs fn, and answers a refusal as an error
-- reply without Redis's "script: ..." suffix.
local function register(name, fn, flags)
  redis.register_function{
    function_name = 'authtoken_' .. name,
    flags = flags,
    callback = function(keys, args)
      local version = table.remove(args, 1)
      if version ~= LIBRARY_VERSION then
        return redis.error_reply('STALE: library version ' .. LIBRARY_VERSION
                                 .. ' is loaded, the caller has '
                                 .. tostring(version))
      end
      local deadline = tonumber(table.remove(args, 1))
      if deadline == nil or now_ms() > deadline then
        return redis.error_reply(
          'LATE: the caller stopped waiting before this function ran')
      end
      local ok, result = pcall(fn, keys, args)
      if ok then
        return result
      end
      if getmetatable(result) == Refused then
        return redis.error_reply('REFUSED: ' .. result.why)
      end
      if type(result) == 'table' and result.err then
        return result -- an error reply of redis.call, as it came
      end
      error(result, 0)
    end,
  }
end

-- A writer refuses a database of another schema version, and marks an
-- empty database with its own on its first write. Versions 1 and 2 and the
-- migration mark are worked on as well: version 1's user records differ
-- only in the `token` and `token_sealed` encodings, which every reader
-- here takes in either form and every writer writes in version 2's; the
-- token records of versions 1 and 2 are named by the digest's hex, and
-- record_key() below picks the name. It stays marked 1 or 2 until
-- `authtokenctl migrate` has rewritten every record (authtoken_migrate
-- marks it 2, authtoken_migrate_tokens 3-partial and then 3).
local function check_schema(schema_key)
  local schema = redis.call('GET', schema_key)
  if schema and schema ~= SCHEMA_VERSION and schema ~= '1' and schema ~= '2'
     and schema ~= SCHEMA_MIGRATING then
    refuse('schema version ' .. schema .. ' is not ' .. SCHEMA_VERSION)
  end
end

local function mark_schema(schema_key)
  redis.call('SET', schema_key, SCHEMA_VERSION, 'NX')
end

-- The user record keeps its token's digest as the 32 bytes (schema
-- version 2), the token record's key and every caller spell it in hex;
-- a version-1 record holds the 64 hex digits, read as they are. The
-- conversions are table lookups inside gsub (no Lua call per byte): a
-- migrate batch converts two values per user.
-- The tables are filled on first use: `string` is not there while Redis
-- loads the library.
local BYTE_OF_HEX, HEX_OF_BYTE
local function hex_tables()
  if not BYTE_OF_HEX then
    BYTE_OF_HEX, HEX_OF_BYTE = {}, {}
    for i = 0, 255 do
      local hex, byte = string.format('%02x', i), string.char(i)
      BYTE_OF_HEX[hex], HEX_OF_BYTE[byte] = byte, hex
    end
  end
end

local function digest_bytes(hex)
  hex_tables()
  return (string.gsub(hex, '%x%x', BYTE_OF_HEX))
end

local function digest_hex(stored)
  if stored and #stored == 32 then
    hex_tables()
    return (string.gsub(stored, '.', HEX_OF_BYTE))
  end
  return stored
end

-- Schema version 3 names a token record by the base64url (RFC 4648
-- section 5, no padding) of its digest's 32 bytes: 43 characters instead
-- of 64, which puts the key in a smaller allocation (docs/capacity.md).
-- keys::token_record_key spells it for C++ (test_redis_keys checks they
-- agree). Three hex digits are two base64url characters: 21 table lookups
-- in one gsub, and the 64th digit's 4 bits (two zero bits after them) make
-- the 43rd character.
local B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
local B64_OF_HEX3
local function token_key(digest)
  if not B64_OF_HEX3 then
    B64_OF_HEX3 = {}
    for i = 0, 4095 do
      local hi, lo = math.floor(i / 64), i % 64
      B64_OF_HEX3[string.format('%03x', i)] =
        string.sub(B64URL, hi + 1, hi + 1) .. string.sub(B64URL, lo + 1, lo + 1)
    end
  end
  digest = string.lower(digest)
  if #digest ~= 64 or string.find(digest, '%X') then
    refuse('not a token digest: ' .. digest)
  end
  local last = tonumber(string.sub(digest, 64, 64), 16) * 4
  return KEY.token .. string.gsub(string.sub(digest, 1, 63), '...', B64_OF_HEX3)
         .. string.sub(B64URL, last + 1, last + 1)
end

-- The name the token record of `digest` (hex) has in the database this
-- function runs on, for a writer (or a reader in a function that may
-- write). Versions 1 and 2: the hex name, which nginx of every version
-- reads. Version 3: token_key(). While migrating (SCHEMA_MIGRATING) a
-- record may still have its hex name: it is renamed here, before the
-- caller touches it, so that no hex name is ever written after the mark
-- (authtoken_migrate_tokens relies on that).
local function record_key(digest)
  local schema = redis.call('GET', KEY.schema)
  if schema == '1' or schema == '2' then
    return KEY.token .. digest
  end
  local key = token_key(digest)
  if schema == SCHEMA_MIGRATING then
    local old = KEY.token .. digest
    if redis.call('EXISTS', old) == 1 then
      if redis.call('EXISTS', key) == 1 then
        redis.call('DEL', old)
      else
        redis.call('RENAME', old, key)
      end
    end
  end
  return key
end

-- The same for a function that must not write ('no-writes'): while
-- migrating, the hex name when that record is still there.
local function record_key_ro(digest)
  local schema = redis.call('GET', KEY.schema)
  if schema == '1' or schema == '2' then
    return KEY.token .. digest
  end
  if schema == SCHEMA_MIGRATING
     and redis.call('EXISTS', KEY.token .. digest) == 1 then
    return KEY.token .. digest
  end
  return token_key(digest)
end

-- The user a username key names: its uid and the key of its record.
local function user_of(username_key)
  local uid = redis.call('GET', username_key)
  if not uid then
    refuse('no such user')
  end
  return uid, KEY.user .. uid
end

-- Tells the caches that a token record changed or went away (a new digest
-- too: a cache may hold a negative entry for it). Each message is numbered
-- by the revocation sequence, in the same function.
--
-- In a user store that feeds a separate token directory (it holds
-- KEY.directory_id: redis/SCHEMA.md, "Two stores") the edges read the
-- directory, not this Redis: the digest is appended to the outbox instead,
-- numbered by the outbox sequence, in the same function that changed the
-- record, and the issuer applies it to the directory (authtoken_dir_apply),
-- which publishes it there.
local function publish(digest)
  if redis.call('EXISTS', KEY.directory_id) == 1 then
    local seq = redis.call('INCR', KEY.outbox_seq)
    redis.call('XADD', KEY.outbox, seq .. '-1', 'd', digest_bytes(digest))
    return
  end
  redis.call('PUBLISH', KEY.revocations,
             digest .. ' ' .. redis.call('INCR', KEY.revocation_seq))
end

-- The moment (Unix seconds, Redis's clock) a new token expires: `at` when
-- it is set (authtokenctl token --expires), else now + `ttl` (token_ttl,
-- token --ttl), else 0 (never: DRF).
local function expiry_of(ttl, at)
  at, ttl = tonumber(at) or 0, tonumber(ttl) or 0
  if at > 0 then
    return at
  end
  if ttl > 0 then
    return tonumber(redis.call('TIME')[1]) + ttl
  end
  return 0
end

-- True when the token record of `digest` has an `expires` that has passed
-- (the same test as the module's judge_token_record: expires <= now).
-- `renewed`: with a separate token directory, the `expires` the caller read
-- there for this digest (sliding renewal pushes it out in the directory
-- only: redis/SCHEMA.md, "Two stores"); a later one than this record's
-- counts, as it does at the edges. nil or '' = none.
local function expired(digest, renewed)
  local expires = tonumber(redis.call('HGET', record_key(digest), 'expires')
                           or '0') or 0
  local later = tonumber(renewed or '') or 0
  if expires ~= 0 and later > expires then
    expires = later
  end
  return expires ~= 0 and expires <= tonumber(redis.call('TIME')[1])
end

local function delete_token_record(digest)
  redis.call('DEL', record_key(digest))
  publish(digest)
end

-- The sliding renewal of a new token that expires (token_auto_refresh,
-- knox's AUTO_REFRESH and AUTO_REFRESH_MAX_TTL), as the record's `renew`
-- (seconds: each use pushes `expires` out to that long after it, see
-- authtoken_touch) and `cap` (Unix seconds it never passes, 0 = none).
-- `max_ttl` is the caller's: nil or '' = no renewal, '0' = no cap, else the
-- cap's distance from now in seconds. Returns renew, cap and the expiry
-- itself, no later than the cap.
local function renewal_of(expires, max_ttl)
  if max_ttl == nil or max_ttl == '' or expires == 0 then
    return 0, 0, expires
  end
  local now = tonumber(redis.call('TIME')[1])
  local cap = tonumber(max_ttl) or 0
  if cap > 0 then
    cap = now + cap
    if expires > cap then
      expires = cap
    end
  end
  return math.max(expires - now, 0), cap, expires
end

-- The user's token, in the user record and as the record nginx reads (one
-- HMGET decides: active is a copy of the user's is_active). `expires` is
-- Unix seconds, 0 = never; `max_ttl` the renewal, see renewal_of(). The
-- only place a token record is written.
local function write_token(user_key, uid, username, active, digest, sealed,
                           created, expires, max_ttl)
  local renew, cap
  renew, cap, expires = renewal_of(expires, max_ttl)
  redis.call('HSET', user_key, 'token', digest_bytes(digest), 'token_sealed',
             sealed, 'token_created', created)
  local key = record_key(digest)
  redis.call('HSET', key, 'uid', uid, 'user', username,
             'active', active, 'expires', tostring(expires), 'created',
             created)
  if renew > 0 then
    redis.call('HSET', key, 'renew', tostring(renew), 'cap',
               tostring(cap))
  end
  publish(digest)
end

-- tokens_per_user = many: the user's set of token digests (a sorted set
-- scored by creation time, ms), beside the one `token` field of DRF's mode.
-- The issuer never lets it grow past token_limit_per_user, at most 1000
-- (keys::kMaxTokensPerUser): every walk over it below is bounded by that.
local function user_tokens_key(uid)
  return KEY.user_tokens .. uid
end

-- Deletes every token the user holds, in either mode: the `token` field's
-- record and every record of the set, each published. Returns how many.
local function delete_all_tokens(uid, user_key)
  local n = 0
  local digest = digest_hex(redis.call('HGET', user_key, 'token'))
  if digest then
    redis.call('HDEL', user_key, 'token', 'token_sealed', 'token_created')
    delete_token_record(digest)
    n = n + 1
  end
  local set = user_tokens_key(uid)
  for _, d in ipairs(redis.call('ZRANGE', set, 0, -1)) do
    delete_token_record(d)
    n = n + 1
  end
  redis.call('DEL', set)
  return n
end

-- create_user: one new user, and its token when auto_create_token is on
-- (the seed's post_save signal), in one step: nginx never sees a token
-- whose user does not exist, and two concurrent creations of one username
-- cannot both win (EXISTS then SET, alone).
--
-- KEYS[1] authtoken:username:<name>   KEYS[2] authtoken:next-uid
-- KEYS[3] authtoken:users             KEYS[4] authtoken:schema
-- args: username, password, is_active, is_staff, is_superuser, email,
--       date_joined, token digest ('' = no token), token_sealed,
--       token_created, token ttl in seconds (token_ttl; '0' = never expires),
--       renewal (token_auto_refresh: '' = off, else token_max_ttl in
--       seconds, '0' = no cap; see renewal_of)
-- Returns the new uid; REFUSED: username taken | schema ...
register('create_user', function(keys, args)
  check_schema(keys[4])
  if redis.call('EXISTS', keys[1]) == 1 then
    refuse('username taken')
  end
  mark_schema(keys[4])

  -- next-uid may lag behind uids written by an import; skip taken ones.
  local uid
  repeat
    uid = redis.call('INCR', keys[2])
  until redis.call('EXISTS', KEY.user .. uid) == 0

  local user_key = KEY.user .. uid
  redis.call('HSET', user_key, 'username', args[1], 'password', args[2],
             'is_active', args[3], 'is_staff', args[4], 'is_superuser',
             args[5], 'email', args[6], 'date_joined', args[7])
  redis.call('SET', keys[1], uid)
  redis.call('ZADD', keys[3], uid, uid)
  if args[8] ~= '' then
    write_token(user_key, uid, args[1], args[3], args[8], args[9], args[10],
                expiry_of(args[11], 0), args[12])
  end
  return uid
end)

-- delete_user: removes the user and its token record together, so the key
-- answers "Invalid token." from the next lookup on.
--
-- KEYS[1] authtoken:username:<name>   KEYS[2] authtoken:users
-- Returns the deleted uid; REFUSED: no such user
register('delete_user', function(keys, args)
  local uid, user_key = user_of(keys[1])
  delete_all_tokens(uid, user_key)
  redis.call('DEL', user_key, keys[1])
  redis.call('ZREM', keys[2], uid)
  return tonumber(uid)
end)

-- issue_token: DRF's Token.objects.get_or_create(user=user), and
-- drf_create_token -r (regenerate). The caller brings a fresh candidate
-- (digest and sealed key); in 'get' mode it is used only when the user has
-- no token, so two concurrent obtains both answer the one token that won.
-- In 'reset' mode the old record is deleted and the new one written in the
-- same step: the old key fails and the new one works at once. An expired
-- token counts as none in 'get' mode: it is replaced the same way (what
-- expiring-token packages do on login), so a dead key is never handed out.
--
-- A login passes what its password check saw (args[8..10]): the token is
-- issued only if none of it changed while the password was being hashed,
-- a compare-and-set. A password changed, the user deactivated, deleted or
-- re-created under the same name, or the token it saw revoked or replaced
-- answers REFUSED: credentials changed.
--
-- KEYS[1] authtoken:username:<name>
-- args: mode ('get' | 'reset'), digest, sealed, created, the new token's
--   ttl in seconds and its absolute expiry in Unix seconds (both '0' =
--   never; the absolute one wins when set), its renewal ('' = none, else
--   token_max_ttl in seconds, '0' = no cap; see renewal_of); then optionally
--   the uid, the verified encoded password, and the token digest the check
--   saw ('' = the user had no token; all three '' = no check); then
--   optionally a digest and the `expires` the separate token directory
--   holds for it (see expired(): a renewed token is not replaced), or
--   'keep' when the directory did not answer (a token that renews, within
--   its cap, is then handed back, not replaced)
-- Returns {digest, sealed, created (1 = the candidate was stored),
--   replaced (1 = an old token record was deleted for it)};
-- REFUSED: no such user; REFUSED: credentials changed
register('issue_token', function(keys, args)
  local uid, user_key = user_of(keys[1])
  local cur = redis.call('HMGET', user_key, 'token', 'token_sealed',
                         'username', 'is_active', 'password')
  cur[1] = digest_hex(cur[1])
  if args[8] and args[8] ~= '' then
    if uid ~= args[8] or cur[5] ~= args[9] or cur[4] ~= '1'
       or (args[10] ~= '' and cur[1] ~= args[10]) then
      refuse('credentials changed')
    end
  end
  local renewed = cur[1] and cur[1] == args[11] and args[12] or nil
  local kept = false
  if renewed == 'keep' then
    -- The directory did not answer: a token that renews (and whose cap,
    -- if any, has not passed) may still be renewed at the edges, so it is
    -- handed back rather than replaced (add_token's 'keep' in many mode).
    renewed = nil
    local r = redis.call('HMGET', record_key(cur[1]), 'renew', 'cap')
    local cap = tonumber(r[2] or '0') or 0
    kept = (tonumber(r[1] or '0') or 0) > 0
           and (cap == 0 or cap > tonumber(redis.call('TIME')[1]))
  end
  if args[1] == 'get' and cur[1] and cur[2]
     and (kept or not expired(cur[1], renewed)) then
    return {cur[1], cur[2], 0}
  end
  if cur[1] then
    delete_token_record(cur[1])
  end
  write_token(user_key, uid, cur[3], cur[4] or '1', args[2], args[3], args[4],
              expiry_of(args[5], args[6]), args[7])
  return {args[2], args[3], 1, cur[1] and 1 or 0}
end)

-- revoke_token: deletes the user's token (DRF: token.delete()), and with
-- tokens_per_user = many every token of the user's set too (logout-all).
-- The next obtain-token creates a new one.
--
-- KEYS[1] authtoken:username:<name>
-- Returns how many tokens were removed (0 when the user had none; in DRF's
-- mode 1 or 0); REFUSED: no such user
register('revoke_token', function(keys, args)
  local uid, user_key = user_of(keys[1])
  return delete_all_tokens(uid, user_key)
end)

-- revoke_one: deletes one token of the user (logout, DELETE
-- /api-tokens/<id>/): the one in its `token` field or one of its set,
-- and only if it is the user's.
--
-- KEYS[1] authtoken:username:<name>
-- args[1] the token's digest
-- Returns 1 when it was the user's and is gone, 0 when the user holds no
-- such token; REFUSED: no such user
register('revoke_one', function(keys, args)
  local uid, user_key = user_of(keys[1])
  if digest_hex(redis.call('HGET', user_key, 'token')) == args[1] then
    redis.call('HDEL', user_key, 'token', 'token_sealed', 'token_created')
    delete_token_record(args[1])
    return 1
  end
  if redis.call('ZREM', user_tokens_key(uid), args[1]) == 1 then
    delete_token_record(args[1])
    return 1
  end
  return 0
end)

-- add_token: tokens_per_user = many. A new token for the user beside the
-- ones it has (knox's LoginView: every login is a new token), with its
-- own name; its key is shown once and is not kept (no token_sealed).
-- Tokens whose record is gone or expired leave the set first (they count
-- for nothing, as knox counts only tokens with expiry > now); then, with
-- the set at `limit`, 'refuse' refuses and 'drop_oldest' deletes the
-- oldest ones to make room. 'replace' (authtokenctl token -r) deletes
-- every token of the user first.
--
-- A login passes what its password check saw (args[10..11]), as for
-- issue_token: REFUSED: credentials changed when the uid, the password
-- hash or is_active changed meanwhile.
--
-- KEYS[1] authtoken:username:<name>
-- args: mode ('add' | 'replace'), digest, created (ISO 8601), ttl seconds,
--   absolute expiry (Unix seconds; both '0' = never), name, limit (1 to
--   1000), policy ('refuse' | 'drop_oldest'), renewal ('' = none, else
--   token_max_ttl in seconds, '0' = no cap; see renewal_of); then
--   optionally the uid and the verified encoded password (both '' = no
--   check); then optionally, with a separate token directory (redis/
--   SCHEMA.md, "Two stores"), '' or 'keep' and `digest expires` pairs:
--   the `expires` the directory holds for tokens whose copy here has
--   passed (sliding renewal pushes it out there only; see expired()), or
--   'keep' when the directory did not answer: then no token that renews
--   (`renew` > 0) is swept as expired, and it counts toward the limit
-- Returns {1, dropped (tokens deleted: expired, to make room, or
-- replaced), swept (of those, the expired ones)}; REFUSED: no such user |
-- credentials changed | token limit | token limit out of range (not 1 to
-- MAX_TOKENS_PER_USER)
register('add_token', function(keys, args)
  local uid, user_key = user_of(keys[1])
  local cur = redis.call('HMGET', user_key, 'username', 'is_active',
                         'password')
  if args[10] and args[10] ~= '' then
    if uid ~= args[10] or cur[3] ~= args[11] or cur[2] ~= '1' then
      refuse('credentials changed')
    end
  end
  local keep = args[12] == 'keep'
  local renewed = {}
  for i = 13, #args - 1, 2 do
    renewed[args[i]] = args[i + 1]
  end
  local set = user_tokens_key(uid)
  local dropped, swept = 0, 0
  if args[1] == 'replace' then
    dropped = delete_all_tokens(uid, user_key)
  end
  for _, d in ipairs(redis.call('ZRANGE', set, 0, -1)) do
    local key = record_key(d)
    if redis.call('EXISTS', key) == 0 then
      redis.call('ZREM', set, d)
    elseif expired(d, renewed[d]) and not (keep and
        (tonumber(redis.call('HGET', key, 'renew') or '0') or 0) > 0) then
      redis.call('ZREM', set, d)
      delete_token_record(d)
      swept = swept + 1
    end
  end
  dropped = dropped + swept
  local limit = tonumber(args[7])
  if not limit or limit < 1 or limit > MAX_TOKENS_PER_USER then
    refuse('token limit out of range')
  end
  local n = redis.call('ZCARD', set)
  if n >= limit then
    if args[8] ~= 'drop_oldest' then
      refuse('token limit')
    end
    for _, d in ipairs(redis.call('ZRANGE', set, 0, n - limit)) do
      redis.call('ZREM', set, d)
      delete_token_record(d)
      dropped = dropped + 1
    end
  end
  local renew, cap, expires = renewal_of(expiry_of(args[4], args[5]),
                                        args[9])
  local key = record_key(args[2])
  redis.call('HSET', key, 'uid', uid, 'user', cur[1],
             'active', cur[2] or '1', 'expires', tostring(expires),
             'created', args[3], 'name', args[6])
  if renew > 0 then
    redis.call('HSET', key, 'renew', tostring(renew), 'cap',
               tostring(cap))
  end
  redis.call('ZADD', set, now_ms(), args[2])
  publish(args[2])
  return {1, dropped, swept}
end)

-- set_active: flips is_active and, in the same step, the `active` copy in
-- the user's token record, so nginx answers "User inactive or deleted."
-- from the very next lookup (and caches are told to drop the entry).
--
-- KEYS[1] authtoken:username:<name>
-- args[1] '1' | '0'
-- Returns 1 when something changed, 0 when it already was so;
-- REFUSED: no such user
register('set_active', function(keys, args)
  local uid, user_key = user_of(keys[1])
  local cur = redis.call('HMGET', user_key, 'is_active', 'token')
  cur[2] = digest_hex(cur[2])
  if cur[1] == args[1] then
    return 0
  end
  redis.call('HSET', user_key, 'is_active', args[1])
  if cur[2] then
    redis.call('HSET', record_key(cur[2]), 'active', args[1])
    publish(cur[2])
  end
  for _, d in ipairs(redis.call('ZRANGE', user_tokens_key(uid), 0, -1)) do
    -- Never recreate a record that is gone as a partial one.
    local key = record_key(d)
    if redis.call('EXISTS', key) == 1 then
      redis.call('HSET', key, 'active', args[1])
      publish(d)
    end
  end
  return 1
end)

-- set_password: stores a new encoded password. With args[2] set it is a
-- compare-and-set: the re-hash after a login with an old hasher must not
-- overwrite a password an admin changed in the meantime. Tokens are left
-- alone, as in Django (changing a password does not touch DRF tokens),
-- unless args[3] is '1' (tokens_per_user = many, or changepassword
-- --revoke-token): then every token of the user is deleted in the same
-- step.
--
-- KEYS[1] authtoken:username:<name>
-- args[1] new encoded password, args[2] expected current one ('' = any),
-- args[3] '1' = also delete every token of the user (optional)
-- Returns 1 when stored, 0 when the current hash was not the expected one;
-- REFUSED: no such user
register('set_password', function(keys, args)
  local uid, user_key = user_of(keys[1])
  if args[2] ~= '' and redis.call('HGET', user_key, 'password') ~= args[2] then
    return 0
  end
  redis.call('HSET', user_key, 'password', args[1])
  if args[3] == '1' then
    delete_all_tokens(uid, user_key)
  end
  return 1
end)

-- import_django: one batch of a `manage.py dumpdata auth.user
-- authtoken.token` file (authtokenctl sends IMPORT_BATCH users per call, see
-- src/issuer/store/user_store.h), atomic so that a batch is written whole or
-- not at all and short so that Redis keeps answering other clients.
-- authtokenctl has validated the file and sealed the keys; it first calls
-- this function with 'check' for every batch (conflicts with what Redis
-- holds, no write) and only then with 'write' for every batch; 'write'
-- checks its batch again (another client may have written in between).
-- The file wins for every field it carries; users and tokens it does not
-- mention are left alone. Running it twice changes nothing: a user already
-- imported with identical fields is not rewritten (counted unchanged) and a
-- token whose digest is already the user's keeps its sealed form, so
-- re-running a file after an interrupted import finishes the job.
--
-- KEYS[1] authtoken:users   KEYS[2] authtoken:next-uid
-- KEYS[3] authtoken:schema
-- args[1] JSON array of {uid, username, password, is_active, is_staff,
--   is_superuser, email, date_joined, last_login, token, token_created}
--   (all strings; token '' = none in the file)
-- args[2] 'check' | 'write'
-- args[2 + i] ('write') the sealed key of the i-th user ('' = no token):
--   binary, so outside the JSON
-- Returns {created, updated, unchanged} ('check': {0, 0, 0});
--   REFUSED: <conflict>
register('import_django', function(keys, args)
  check_schema(keys[3])
  local users = cjson.decode(args[1])
  for i, u in ipairs(users) do
    u.token_sealed = args[2 + i] or ''
  end

  -- Refuse conflicts with existing data before writing anything.
  for _, u in ipairs(users) do
    local owner = redis.call('GET', KEY.username .. u.username)
    if owner and owner ~= u.uid then
      refuse('username "' .. u.username .. '" already belongs to uid ' .. owner)
    end
    local name = redis.call('HGET', KEY.user .. u.uid, 'username')
    if name and name ~= u.username then
      refuse('uid ' .. u.uid .. ' is already user "' .. name .. '"')
    end
    if u.token ~= '' then
      local holder = redis.call('HGET', record_key_ro(u.token), 'uid')
      if holder and holder ~= u.uid then
        refuse('the token of "' .. u.username .. '" already belongs to uid '
               .. holder)
      end
    end
  end
  if args[2] == 'check' then
    return {0, 0, 0}
  end

  mark_schema(keys[3])
  local fields = {'username', 'password', 'is_active', 'is_staff',
                  'is_superuser', 'email', 'date_joined', 'last_login'}
  local created, updated, unchanged = 0, 0, 0
  local max_uid = tonumber(redis.call('GET', keys[2]) or '0')

  for _, u in ipairs(users) do
    local user_key = KEY.user .. u.uid
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
    local token = digest_hex(cur[9])
    if u.token ~= '' and token ~= u.token then
      changed = true
    end

    if changed then
      local set, unset = {}, {}
      for _, f in ipairs(fields) do
        if u[f] == '' and (f == 'last_login' or f == 'email') then
          unset[#unset + 1] = f
        else
          set[#set + 1] = f
          set[#set + 1] = u[f]
        end
      end
      redis.call('HSET', user_key, unpack(set))
      if #unset > 0 then
        redis.call('HDEL', user_key, unpack(unset))
      end
      redis.call('SET', KEY.username .. u.username, u.uid)
      redis.call('ZADD', keys[1], u.uid, u.uid)

      if u.token ~= '' and token ~= u.token then
        if token then
          delete_token_record(token)
        end
        write_token(user_key, u.uid, u.username, u.is_active, u.token,
                    u.token_sealed, u.token_created, 0)
      elseif token then
        -- Same token (or none in the file): keep the record in step with
        -- the user's is_active.
        local key = record_key(token)
        if redis.call('HGET', key, 'active') ~= u.is_active then
          redis.call('HSET', key, 'active', u.is_active)
          publish(token)
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
  redis.call('SET', keys[2], max_uid)
  return {created, updated, unchanged}
end)

-- migrate: one batch of `authtokenctl migrate`'s first step, which brings
-- a database of schema version 1 to version 2 (authtoken_migrate_tokens
-- below is the step to 3): the user records of the next `limit`
-- uids after `after` (authtoken:users order) get their token's digest as
-- its 32 bytes and their sealed key as 0x01 followed by the bytes its
-- "v1:" hex spelled (the same AES-GCM value, src/issuer/token_sealer.h:
-- no secret is needed). Token records, which nginx reads, are the same in
-- both versions and are not touched, so verdicts never change and nothing
-- is published. A record already in version 2's form is left alone, so a
-- batch that runs twice (a re-run after an interrupted migration) changes
-- nothing the second time.
--
-- KEYS[1] authtoken:users   KEYS[2] authtoken:schema
-- args[1] the last uid of the previous batch ('0' at the start)
-- args[2] the batch's size, at most 1000
-- Returns {migrated, already compact, last uid of this batch (0 = there
--   was none: the migration is complete, and a database marked 1 is
--   marked version 2)}; REFUSED: schema ...
register('migrate', function(keys, args)
  check_schema(keys[2])
  local limit = tonumber(args[2])
  if not limit or limit < 1 or limit > 1000 then
    refuse('a batch is 1 to 1000 users')
  end
  local uids = redis.call('ZRANGEBYSCORE', keys[1], '(' .. args[1], '+inf',
                          'LIMIT', 0, limit)
  if #uids == 0 and redis.call('GET', keys[2]) == '1' then
    redis.call('SET', keys[2], '2') -- every user record is version 2's
  end
  local migrated, already = 0, 0
  for _, uid in ipairs(uids) do
    local user_key = KEY.user .. uid
    local cur = redis.call('HMGET', user_key, 'token', 'token_sealed')
    if (cur[1] and #cur[1] == 64)
       or (cur[2] and string.sub(cur[2], 1, 3) == 'v1:') then
      -- Written anew, not changed in place: Redis never turns a hash
      -- back into a listpack, and the hex sealed key had made this one a
      -- hashtable.
      local all = redis.call('HGETALL', user_key)
      for i = 1, #all, 2 do
        if all[i] == 'token' and #all[i + 1] == 64 then
          all[i + 1] = digest_bytes(all[i + 1])
        elseif all[i] == 'token_sealed'
               and string.sub(all[i + 1], 1, 3) == 'v1:' then
          all[i + 1] = '\1' .. digest_bytes(string.sub(all[i + 1], 4))
        end
      end
      redis.call('DEL', user_key)
      redis.call('HSET', user_key, unpack(all))
      migrated = migrated + 1
    else
      already = already + 1
    end
  end
  return {migrated, already, tonumber(uids[#uids] or '0')}
end)

-- migrate_tokens: one batch of `authtokenctl migrate`'s second step, which
-- brings a database (user store or token directory) of schema version 2
-- to version 3: token records renamed from authtoken:token:<64 hex> to
-- token_key(). The first call marks the database SCHEMA_MIGRATING; from
-- then on every writer renames a hex record it meets before touching it
-- (record_key) and never writes a hex name, and nginx (which reads both
-- names while the schema it read is not 3, hex first) finds each record
-- under one name or the other at every moment: RENAME is atomic. Each
-- call then takes one SCAN step (MATCH authtoken:token:*, COUNT `count`:
-- bounded work) from `cursor` and renames the hex names it returns (or
-- deletes one whose new name exists already). When the cursor comes back
-- 0 the database is marked version 3: a full SCAN iteration returns every
-- key that was present throughout it, and no hex name is created after
-- the mark, so every hex name there was has been renamed by then (by this
-- SCAN or by a writer). Calls are idempotent: a re-run after an
-- interruption starts a new iteration and finishes the job. The record's
-- digest and content do not change, so nothing is published.
--
-- KEYS[1] authtoken:schema
-- args[1] the SCAN cursor ('0' at the start), args[2] count, 1 to 1000
-- Returns {next cursor ('0': done, the database is marked 3), renamed,
--   keys looked at}; REFUSED: schema 1 (the user records first) | schema ...
register('migrate_tokens', function(keys, args)
  local schema = redis.call('GET', keys[1])
  if not schema or schema == SCHEMA_VERSION then
    return {'0', 0, 0} -- an empty database, or done
  end
  if schema == '1' then
    refuse('schema version 1: the user records are migrated first')
  end
  check_schema(keys[1])
  local count = tonumber(args[2])
  if not count or count < 1 or count > 1000 then
    refuse('a batch is 1 to 1000 keys')
  end
  if schema ~= SCHEMA_MIGRATING then
    redis.call('SET', keys[1], SCHEMA_MIGRATING)
  end
  local r = redis.call('SCAN', args[1], 'MATCH', KEY.token .. '*', 'COUNT',
                       count)
  local renamed = 0
  for _, key in ipairs(r[2]) do
    local digest = string.sub(key, #KEY.token + 1)
    if #digest == 64 and not string.find(digest, '%X') then
      local new = token_key(digest)
      if redis.call('EXISTS', new) == 1 then
        redis.call('DEL', key)
      else
        redis.call('RENAME', key, new)
      end
      renamed = renamed + 1
    end
  end
  if r[1] == '0' then
    redis.call('SET', keys[1], SCHEMA_VERSION)
  end
  return {r[1], renamed, #r[2]}
end)

-- throttle: the failed-login throttle, with attempts reserved before the
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
--   (authtoken:throttle:<scope>:<subject>)
-- args[1] 'reserve' | 'succeed' | 'fail'
-- args[2] the attempt's member ('reserve': a nonce to build it from)
-- 'reserve' also takes args[3] the in-flight lifetime (ms), args[4] the
--   first progressive delay (ms), args[5] the longest (ms), then per
--   subject: kind ('hard' | 'delay'), limit (0 = no window), window (ms),
--   in-flight cap (0 = none).
--
-- 'reserve' returns {wait_ms, delay_ms, member}: wait_ms > 0 refuses the
--   attempt (a hard window is full, or too many attempts are in flight) and
--   records nothing; otherwise the attempt is recorded in every window and
--   in-flight set, and delay_ms is how long the caller waits before checking
--   the password (a full 'delay' window: limit's first failure waits
--   args[4], each further one twice as long, up to args[5]).
-- 'succeed' removes the attempt everywhere (successes do not count);
-- 'fail' keeps it in the windows, where it counts as a failed login, and
--   removes it from the in-flight sets. Both return 0.
register('throttle', function(keys, args)
  local now = now_ms()
  local mode = args[1]
  local subjects = #keys / 2

  if mode ~= 'reserve' then
    for i = 1, subjects do
      if mode == 'succeed' then
        redis.call('ZREM', keys[2 * i - 1], args[2])
      end
      redis.call('ZREM', keys[2 * i], args[2])
    end
    return 0
  end

  local lifetime = tonumber(args[3])
  local first_delay = tonumber(args[4])
  local max_delay = tonumber(args[5])
  local wait, delay = 0, 0
  for i = 1, subjects do
    local window_key, flight_key = keys[2 * i - 1], keys[2 * i]
    local a = 5 + 4 * (i - 1)
    local kind, limit = args[a + 1], tonumber(args[a + 2])
    local window, cap = tonumber(args[a + 3]), tonumber(args[a + 4])
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
        -- Another attempt is allowed once all but limit-1 attempts have
        -- left the window: that is when the (n-limit)th oldest one leaves.
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

  local member = now .. ':' .. args[2]
  for i = 1, subjects do
    local window_key, flight_key = keys[2 * i - 1], keys[2 * i]
    local a = 5 + 4 * (i - 1)
    local limit, window = tonumber(args[a + 2]), tonumber(args[a + 3])
    if limit > 0 then
      redis.call('ZADD', window_key, now, member)
      redis.call('PEXPIRE', window_key, window)
    end
    if tonumber(args[a + 4]) > 0 then
      redis.call('ZADD', flight_key, now + lifetime, member)
      redis.call('PEXPIRE', flight_key, lifetime)
    end
  end
  return {wait, delay, member}
end)

-- The split layout (redis/SCHEMA.md, "Two stores"): the user store's outbox
-- and the token directory's side of it. Each call is bounded by its batch.

local OUTBOX_BATCH = 500
-- Acknowledged entries kept for replay into a directory that lost writes
-- (a failover): the last this many numbers.
local OUTBOX_RETAIN = 100000

-- A directory function refuses to run on a user store, and the other way
-- round, so neither can be mistaken for the other.
local function directory_only()
  if redis.call('EXISTS', KEY.directory_id) == 1 then
    refuse('this Redis is a user store, not a token directory')
  end
end

-- authtoken_outbox_read (user store, no writes): args from, count. Answers
-- {acked, outbox-seq, oldest number held (0: none), entries...}, each entry
-- {seq, digest (hex), present (1/0), uid, user, active, expires, renew,
-- cap}: the record's state now, not when the entry was made.
register('outbox_read', function(_, args)
  local from = tonumber(args[1])
  local count = math.min(tonumber(args[2]) or OUTBOX_BATCH, OUTBOX_BATCH)
  if not from or from < 1 then
    refuse('outbox_read: bad start')
  end
  local reply = {
    tonumber(redis.call('GET', KEY.outbox_acked) or '0'),
    tonumber(redis.call('GET', KEY.outbox_seq) or '0'),
    0,
  }
  local first = redis.call('XRANGE', KEY.outbox, '-', '+', 'COUNT', 1)[1]
  if first then
    reply[3] = tonumber(string.match(first[1], '^(%d+)-'))
  end
  for _, e in ipairs(redis.call('XRANGE', KEY.outbox, from .. '-0', '+',
                                'COUNT', count)) do
    local digest = digest_hex(e[2][2])
    local r = redis.call('HMGET', record_key_ro(digest), 'uid', 'user',
                         'active', 'expires', 'renew', 'cap')
    local present = r[1] and 1 or 0
    reply[#reply + 1] = {tonumber(string.match(e[1], '^(%d+)-')), digest,
                         present, r[1] or '', r[2] or '', r[3] or '',
                         r[4] or '', r[5] or '', r[6] or ''}
  end
  return reply
end, {'no-writes'})

-- authtoken_outbox_ack (user store): args upto. The directory has applied
-- every entry up to `upto`: outbox-acked becomes max(acked, upto), never
-- more than outbox-seq, and entries older than the retention are trimmed.
-- Answers the acknowledged number.
register('outbox_ack', function(_, args)
  local upto = tonumber(args[1])
  local seq = tonumber(redis.call('GET', KEY.outbox_seq) or '0')
  if not upto or upto < 0 or upto > seq then
    refuse('outbox_ack: ' .. tostring(args[1]) .. ' is not a number handed out')
  end
  local acked = tonumber(redis.call('GET', KEY.outbox_acked) or '0')
  if upto > acked then
    acked = upto
    redis.call('SET', KEY.outbox_acked, acked)
  end
  if acked > OUTBOX_RETAIN then
    redis.call('XTRIM', KEY.outbox, 'MINID', (acked - OUTBOX_RETAIN) .. '-0')
  end
  return acked
end)

-- authtoken_directory_mark (user store): args id. Makes this Redis a user
-- store feeding the token directory `id`: from now on every change to a
-- token record goes to the outbox. Refuses another id.
register('directory_mark', function(_, args)
  local id = args[1]
  if not id or not string.match(id, '^%x+$') or #id ~= 32 then
    refuse('directory id must be 32 hex digits')
  end
  if redis.call('EXISTS', KEY.directory) == 1 then
    refuse('this Redis is a token directory, not a user store')
  end
  local current = redis.call('GET', KEY.directory_id)
  if current and current ~= id then
    refuse('this user store feeds directory ' .. current)
  end
  redis.call('SET', KEY.directory_id, id)
  return 1
end)

-- authtoken_directory_snapshot (user store, no writes): args from_uid. The
-- token records of the users from uid `from_uid` on, whole users only, at
-- most 500 users, and no user begun once 500 records are in (so at most
-- 500 + 1001 records).
-- Answers {next uid (0: no user left), entries...}, each entry {digest,
-- present (1), uid, user, active, expires, renew, cap} as dir_copy takes
-- them.
register('directory_snapshot', function(_, args)
  local from = tonumber(args[1])
  if not from then
    refuse('directory_snapshot: bad uid')
  end
  local reply = {0}
  local users = redis.call('ZRANGE', KEY.users, from, '+inf', 'BYSCORE',
                           'LIMIT', 0, OUTBOX_BATCH + 1)
  for i, uid in ipairs(users) do
    if i > OUTBOX_BATCH or #reply - 1 >= OUTBOX_BATCH then
      reply[1] = tonumber(uid)
      break
    end
    local digests = redis.call('ZRANGE', user_tokens_key(uid), 0, -1)
    local own = digest_hex(redis.call('HGET', KEY.user .. uid, 'token'))
    if own then
      digests[#digests + 1] = own
    end
    for _, digest in ipairs(digests) do
      local r = redis.call('HMGET', record_key_ro(digest), 'uid', 'user',
                           'active', 'expires', 'renew', 'cap')
      if r[1] then
        reply[#reply + 1] = {digest, 1, r[1], r[2] or '', r[3] or '',
                             r[4] or '', r[5] or '', r[6] or ''}
      end
    end
  end
  return reply
end, {'no-writes'})

-- The directory's record of itself: id, applied (a number), state.
local function directory_state()
  local d = redis.call('HMGET', KEY.directory, 'id', 'applied', 'state',
                       'from')
  return d[1], tonumber(d[2] or '0'), d[3], tonumber(d[4] or '0')
end

-- Writes one token record as the user store holds it, keeping what only
-- the directory holds (nginx's touch fields, a renewed expires): `expires`
-- and the renewal (`renew`, `cap`: fixed when the token is made) are
-- written only with a new record, so authtoken_touch can renew a token the
-- edges read from the directory. Or deletes it. Publishes it.
local function directory_put(digest, present, uid, user, active, expires,
                             renew, cap)
  local key = record_key(digest)
  if present == '1' then
    if redis.call('EXISTS', key) == 1 then
      redis.call('HSET', key, 'uid', uid, 'user', user, 'active', active)
    else
      redis.call('HSET', key, 'uid', uid, 'user', user, 'active', active,
                 'expires', expires)
      if (tonumber(renew) or 0) > 0 then
        redis.call('HSET', key, 'renew', renew, 'cap', cap)
      end
    end
  else
    redis.call('DEL', key)
  end
  publish(digest)
end

-- authtoken_dir_apply (directory): args id, acked, then entries of nine
-- arguments each, as outbox_read answers them: seq, digest, present, uid,
-- user, active, expires, renew, cap. The fence: an entry is applied only when its seq
-- is applied + 1 (recorded in the same call), skipped when at or below
-- applied, and a gap stops the call; so entries take effect in order and
-- once, whoever sends them and however late. Refuses with 'REBUILD: ...'
-- (a refusal like any other) and writes nothing when this directory
-- cannot continue from what it holds: no id or another one (emptied,
-- restarted without persistence, another directory), a rebuild in
-- progress, or applied below what the user store acknowledged (lost
-- writes) without the entry right after applied. Answers applied.
register('dir_apply', function(_, args)
  directory_only()
  local want, acked = args[1], tonumber(args[2])
  local id, applied, state = directory_state()
  if id ~= want then
    refuse('REBUILD: the directory is ' ..
                             (id and ('directory ' .. id) or 'empty'))
  end
  if state ~= 'ready' then
    refuse('REBUILD: a rebuild is in progress')
  end
  local n = (#args - 2) / 9
  if n ~= math.floor(n) or n > OUTBOX_BATCH then
    refuse('dir_apply: entries are 9 arguments each, at most ' ..
           OUTBOX_BATCH)
  end
  if acked and applied < acked and
     (n == 0 or tonumber(args[3]) > applied + 1) then
    refuse('REBUILD: the directory applied ' .. applied ..
                             ', the user store acknowledged ' .. acked)
  end
  for i = 0, n - 1 do
    local a = 3 + 9 * i
    local seq = tonumber(args[a])
    if seq == applied + 1 then
      directory_put(args[a + 1], args[a + 2], args[a + 3], args[a + 4],
                    args[a + 5], args[a + 6], args[a + 7], args[a + 8])
      applied = seq
    elseif seq > applied + 1 then
      break
    end
  end
  redis.call('HSET', KEY.directory, 'applied', applied)
  return applied
end)

-- A rebuild belongs to whoever began it last (`owner`, a random string
-- the caller makes): a rebuilder overtaken by another (it paused, or two
-- started at once) can neither copy nor finish, so it cannot mark the
-- directory complete up to its `from` with records the other's sweep did
-- not see, nor write a record its snapshot read before a revocation.
--
-- While it works the owner holds a lease (its `lease` field, a moment in
-- milliseconds by this Redis's clock), taken by dir_rebuild_begin and
-- renewed by every dir_copy: another rebuild begun meanwhile is refused
-- BUSY and its caller waits for this one to finish (the changes it has to
-- apply come after this rebuild's `from`), instead of starting over and
-- throwing this one's work away. A rebuilder that died or paused for
-- longer than the lease is overtaken.
local REBUILD_LEASE_MS = 5000
local function rebuilding_as(fn, id, owner)
  local d = redis.call('HMGET', KEY.directory, 'id', 'state', 'owner')
  if d[1] ~= id or d[2] ~= 'rebuilding' or d[3] ~= owner then
    refuse(fn .. ': this caller is not rebuilding directory ' .. tostring(id))
  end
  redis.call('HSET', KEY.directory, 'lease', now_ms() + REBUILD_LEASE_MS)
end

-- authtoken_dir_rebuild_begin (directory): args id, from, owner. Marks the
-- directory rebuilding (dir_apply refuses meanwhile) as directory `id`,
-- by `owner`, to continue from outbox number `from` when done, and marks
-- the schema. Answers DBSIZE (informative: the caller sweeps every token
-- record whatever the count, the heartbeat and revocation counter being
-- there or not). Refuses 'BUSY: ...' (writing nothing) while another owner's
-- rebuild holds its lease: the caller waits for that one.
register('dir_rebuild_begin', function(_, args)
  directory_only()
  local id, from, owner = args[1], tonumber(args[2]), args[3]
  if not id or #id ~= 32 or not from or not owner or owner == '' then
    refuse('dir_rebuild_begin: id, from and owner')
  end
  local held = redis.call('HMGET', KEY.directory, 'state', 'owner', 'lease')
  if held[1] == 'rebuilding' and held[2] ~= owner and
     (tonumber(held[3]) or 0) > now_ms() then
    refuse('BUSY: another replayer is rebuilding this directory')
  end
  redis.call('HSET', KEY.directory, 'lease', now_ms() + REBUILD_LEASE_MS)
  redis.call('HSET', KEY.directory, 'id', id, 'state', 'rebuilding', 'from',
             from, 'owner', owner)
  -- A directory of version 3 (or a new one) holds no hex name. One of an
  -- earlier version is marked as being migrated: every record the rebuild
  -- writes or deletes loses its hex name (record_key), and its sweep walks
  -- every token record, so dir_rebuild_end marks it version 3.
  local schema = redis.call('GET', KEY.schema)
  if schema and schema ~= SCHEMA_VERSION then
    redis.call('SET', KEY.schema, SCHEMA_MIGRATING)
  else
    redis.call('SET', KEY.schema, SCHEMA_VERSION)
  end
  return redis.call('DBSIZE')
end)

-- authtoken_dir_copy (directory): args id, owner, then entries of eight
-- arguments (digest, present, uid, user, active, expires, renew, cap), at
-- most 500:
-- the rebuild's copy and sweep, written as dir_apply writes them.
register('dir_copy', function(_, args)
  directory_only()
  rebuilding_as('dir_copy', args[1], args[2])
  local n = (#args - 2) / 8
  if n ~= math.floor(n) or n > OUTBOX_BATCH then
    refuse('dir_copy: entries are 8 arguments each, at most ' .. OUTBOX_BATCH)
  end
  for i = 0, n - 1 do
    local a = 3 + 8 * i
    directory_put(args[a], args[a + 1], args[a + 2], args[a + 3],
                  args[a + 4], args[a + 5], args[a + 6], args[a + 7])
  end
  return n
end)

-- authtoken_dir_rebuild_end (directory): args id, owner. applied = from,
-- ready.
register('dir_rebuild_end', function(_, args)
  directory_only()
  rebuilding_as('dir_rebuild_end', args[1], args[2])
  local _, _, _, from = directory_state()
  redis.call('HSET', KEY.directory, 'applied', from, 'state', 'ready')
  redis.call('HDEL', KEY.directory, 'from', 'owner')
  redis.call('SET', KEY.schema, SCHEMA_VERSION) -- see dir_rebuild_begin
  return from
end)

-- authtoken_dir_heartbeat (directory): args id, acked, value. The issuer's
-- heartbeat (authtoken:heartbeat, watched by auth_token_max_lag) in the
-- split layout: written only while this directory is complete, as
-- directory `id`, ready, and applied at least up to what the user store
-- acknowledged (`acked`). An emptied, other or rebuilding directory gets
-- no heartbeat, so the edges reading it answer 503 once max_lag has passed
-- instead of 401 for every token it no longer holds. Refuses with
-- 'REBUILD: ...' as dir_apply does. Answers 1.
register('dir_heartbeat', function(_, args)
  directory_only()
  local want, acked = args[1], tonumber(args[2])
  local id, applied, state = directory_state()
  if id ~= want or state ~= 'ready' then
    refuse('REBUILD: the directory is not ready as ' .. tostring(want))
  end
  if not acked or applied < acked then
    refuse('REBUILD: the directory applied ' .. applied ..
           ', the user store acknowledged ' .. tostring(args[2]))
  end
  redis.call('SET', KEY.heartbeat, args[3])
  return 1
end)

-- touch: what nginx noted about tokens in use (auth_token_last_used),
-- flushed in batches by one worker per interval: each token's `last_used`
-- (Unix seconds) and `last_addr` (the client address as $remote_addr gives
-- it), and the sliding renewal those uses earn (knox's AUTO_REFRESH with
-- AUTO_REFRESH_MAX_TTL): a record with `renew` > 0 that has not expired gets
-- `expires` = min(last_used + renew, `cap`) when that is later than its
-- `expires` now (`cap` 0 = no cap; an inactive user's token is not renewed).
--
-- Only records that exist are updated: a revoked (deleted) token is never
-- recreated, and no verdict changes (an expired token stays expired; a
-- renewal only moves a future expiry further out, so no cache needs to
-- hear of it: a cached `expires` that passes makes the edge look again).
-- Both writes only move forward, so a late or repeated call changes
-- nothing it should not: unlike the issuer's functions this one takes no
-- library version and no deadline (nginx does not load the library and is
-- upgraded on its own schedule), but its arguments carry their own
-- version, TOUCH_VERSION, which it refuses to guess at.
--
-- KEYS[1..n] authtoken:token:<digest>, n <= TOUCH_MAX: version 3's name, or
--   the hex one (the record under it, else under its new name)
-- args: TOUCH_VERSION, then per key: last_used, last_addr
-- Returns {records updated, expiries renewed}; REFUSED: ... (nothing written)
local TOUCH_VERSION = '1'
local TOUCH_MAX = 256
redis.register_function{
  function_name = 'authtoken_touch',
  callback = function(keys, args)
    if args[1] ~= TOUCH_VERSION then
      return redis.error_reply('REFUSED: touch arguments version '
                               .. tostring(args[1]) .. ', this library has '
                               .. TOUCH_VERSION)
    end
    if #keys > TOUCH_MAX or #args ~= 1 + 2 * #keys then
      return redis.error_reply('REFUSED: touch takes at most ' .. TOUCH_MAX
                               .. ' keys, each with last_used and last_addr')
    end
    local now = tonumber(redis.call('TIME')[1])
    local touched, renewed = 0, 0
    for i, key in ipairs(keys) do
      local used = tonumber(args[2 * i])
      local r = redis.call('HMGET', key, 'uid', 'last_used', 'active',
                           'expires', 'renew', 'cap')
      -- nginx names a record by its hex digest while the schema it read
      -- is not 3; renamed since (a migration), it has its new name. Only
      -- HMGET and HSET of a record that exists: nothing is renamed or
      -- created here (authtoken-edge-writer's ACL allows no more), and a
      -- hex name updated in place is still renamed by the migration.
      local digest = string.sub(key, #KEY.token + 1)
      if not r[1] and #digest == 64 and not string.find(digest, '%X') then
        key = token_key(digest)
        r = redis.call('HMGET', key, 'uid', 'last_used', 'active',
                       'expires', 'renew', 'cap')
      end
      if r[1] and used and used > 0 then
        local fields = {}
        if used >= (tonumber(r[2]) or 0) then
          fields = {'last_used', tostring(used), 'last_addr', args[2 * i + 1]}
        end
        local expires, renew = tonumber(r[4]) or 0, tonumber(r[5]) or 0
        local cap = tonumber(r[6]) or 0
        if renew > 0 and r[3] == '1' and expires > now then
          local new = used + renew
          if cap > 0 and new > cap then
            new = cap
          end
          if new > expires then
            fields[#fields + 1] = 'expires'
            fields[#fields + 1] = tostring(new)
            renewed = renewed + 1
          end
        end
        if #fields > 0 then
          redis.call('HSET', key, unpack(fields))
          touched = touched + 1
        end
      end
    end
    return {touched, renewed}
  end,
}

-- authtoken_version: the version loaded, for a loader deciding whether to
-- load its own (FCALL_RO authtoken_version 0). Reads nothing.
redis.register_function{
  function_name = 'authtoken_version',
  flags = {'no-writes'},
  callback = function()
    return LIBRARY_VERSION
  end,
}
