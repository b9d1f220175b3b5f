-- The "do it yourself" competitor for tools/bench (row 3): DRF's
-- TokenAuthentication in access_by_lua with lua-resty-redis (Debian ships it
-- as `nginx.redis`, package lua-nginx-redis) and a keepalive pool, reading
-- the same Redis records as the module (redis/SCHEMA.md).
--
-- SHA-256: Debian has no lua-resty-string, so this does what resty.sha256
-- does, directly through LuaJIT's FFI: OpenSSL's one-shot SHA256() from the
-- libcrypto nginx is already linked with.
local ffi = require "ffi"
local redis = require "nginx.redis"

ffi.cdef [[
unsigned char *SHA256(const unsigned char *d, size_t n, unsigned char *md);
]]
local C = ffi.C
local digest_buf = ffi.new("unsigned char[32]")

local ngx = ngx
local null = ngx.null
local find, lower, gmatch = string.find, string.lower, string.gmatch
local tonumber = tonumber

local _M = {}

_M.host = "127.0.0.1"
_M.port = 6379
_M.timeout_ms = 1000

-- The token record's name (redis/SCHEMA.md, schema version 3): the
-- base64url of the digest's 32 bytes, no padding (ngx.encode_base64 with
-- no_padding, then the URL-safe alphabet).
local B64URL = { ["+"] = "-", ["/"] = "_" }
local function token_key(s)
    C.SHA256(s, #s, digest_buf)
    local b64 = ngx.encode_base64(ffi.string(digest_buf, 32), true)
    return "authtoken:token:" .. string.gsub(b64, "[+/]", B64URL)
end

-- Python's strict UTF-8 decode (what DRF's key.decode() does): no
-- overlongs, no surrogates, nothing above U+10FFFF.
local function valid_utf8(s)
    if not find(s, "[\128-\255]") then return true end
    local i, n = 1, #s
    local byte = string.byte
    while i <= n do
        local c = byte(s, i)
        if c < 0x80 then
            i = i + 1
        else
            local len, lo, hi
            if c >= 0xC2 and c <= 0xDF then len = 2
            elseif c >= 0xE0 and c <= 0xEF then len = 3
            elseif c >= 0xF0 and c <= 0xF4 then len = 4
            else return false end
            local c2 = byte(s, i + 1)
            if not c2 then return false end
            lo, hi = 0x80, 0xBF
            if c == 0xE0 then lo = 0xA0 elseif c == 0xED then hi = 0x9F
            elseif c == 0xF0 then lo = 0x90 elseif c == 0xF4 then hi = 0x8F end
            if c2 < lo or c2 > hi then return false end
            for j = 2, len - 1 do
                local cj = byte(s, i + j)
                if not cj or cj < 0x80 or cj > 0xBF then return false end
            end
            i = i + len
        end
    end
    return true
end

local function deny(status, detail)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    if status == 401 then
        ngx.header["WWW-Authenticate"] = "Token"
    else
        ngx.header["Retry-After"] = "1"
    end
    ngx.print('{"detail":"' .. detail .. '"}')
    return ngx.exit(ngx.HTTP_OK)
end

local UNAVAILABLE = "Service temporarily unavailable, try again later."

function _M.check()
    local h = ngx.var.http_authorization
    if not h then
        return deny(401, "Authentication credentials were not provided.")
    end
    -- DRF: auth = get_authorization_header(request).split() (bytes.split()
    -- splits on ASCII whitespace; %s in LuaJIT's C locale is the same set)
    local kw, key, extra
    local n = 0
    for part in gmatch(h, "%S+") do
        n = n + 1
        if n == 1 then kw = part elseif n == 2 then key = part else extra = true break end
    end
    if n == 0 or lower(kw) ~= "token" then
        return deny(401, "Authentication credentials were not provided.")
    end
    if n == 1 then
        return deny(401, "Invalid token header. No credentials provided.")
    end
    if extra then
        return deny(401, "Invalid token header. Token string should not contain spaces.")
    end
    if not valid_utf8(key) then
        return deny(401, "Invalid token header. Token string should not contain invalid characters.")
    end

    local red = redis:new()
    red:set_timeout(_M.timeout_ms)
    local ok, err = red:connect(_M.host, _M.port)
    if not ok then
        ngx.log(ngx.ERR, "redis connect: ", err)
        return deny(503, UNAVAILABLE)
    end
    local rec
    rec, err = red:hmget(token_key(key),
                         "uid", "user", "active", "expires")
    if not rec then
        ngx.log(ngx.ERR, "redis hmget: ", err)
        red:close()
        return deny(503, UNAVAILABLE)
    end
    red:set_keepalive(60000, 256)

    local uid, user, active, expires = rec[1], rec[2], rec[3], rec[4]
    if uid == null and user == null and active == null and expires == null then
        return deny(401, "Invalid token.")
    end
    local exp = 0
    if expires ~= null then
        exp = tonumber(expires)
        if not exp then
            ngx.log(ngx.ERR, "malformed token record")
            return deny(503, UNAVAILABLE)
        end
    end
    if exp ~= 0 and exp <= ngx.time() then
        return deny(401, "Invalid token.")
    end
    if uid == null or user == null or not tonumber(uid) then
        ngx.log(ngx.ERR, "malformed token record")
        return deny(503, UNAVAILABLE)
    end
    if active == "0" then
        return deny(401, "User inactive or deleted.")
    end
    if active ~= "1" then
        ngx.log(ngx.ERR, "malformed token record")
        return deny(503, UNAVAILABLE)
    end
    ngx.ctx.auth_user = user
    ngx.ctx.auth_uid = uid
end

return _M
