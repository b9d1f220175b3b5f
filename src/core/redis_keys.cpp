#include "core/redis_keys.h"

#include <cstring>
#include <stdexcept>

namespace authtoken::keys
{

namespace
{

using LookupBytes = std::array<char, TokenRecordLookup::kCapacity>;

// Writes RESP into a fixed array; usable at compile time, where writing
// past the end is an error (the throw cannot be evaluated).
class RespWriter
{
  public:
    constexpr explicit RespWriter(LookupBytes &out) : out_(out) {}
    constexpr void header(char type, std::size_t n)
    {
        put(type);
        char digits[20] = {};
        std::size_t d = 0;
        do {
            digits[d++] = static_cast<char>('0' + n % 10);
            n /= 10;
        } while (n != 0);
        while (d > 0) {
            put(digits[--d]);
        }
        crlf();
    }
    constexpr void raw(std::string_view s)
    {
        for (char c : s) {
            put(c);
        }
    }
    constexpr void bulk(std::string_view s)
    {
        header('$', s.size());
        raw(s);
        crlf();
    }
    constexpr void crlf()
    {
        put('\r');
        put('\n');
    }
    constexpr void put(char c)
    {
        if (len_ == out_.size()) {
            throw std::length_error("RESP command longer than its buffer");
        }
        out_[len_++] = c;
    }
    constexpr std::size_t length() const
    {
        return len_;
    }

  private:
    LookupBytes &out_;
    std::size_t len_ = 0;
};

struct LookupTemplate {
    LookupBytes bytes{};
    std::size_t length = 0;
    std::size_t digest_offset = 0; // where the 64 hex digits go
};

// HMGET authtoken:token:<64 zeros> uid user active expires, in RESP.
constexpr LookupTemplate build_lookup_template()
{
    LookupTemplate t;
    RespWriter w(t.bytes);
    w.header('*', 2 + kTokenRecordFields.size());
    w.bulk("HMGET");
    w.header('$', TokenRecordKey::kLength);
    w.raw(kTokenPrefix);
    t.digest_offset = w.length();
    for (std::size_t i = 0; i < std::tuple_size_v<Sha256Hex>; i++) {
        w.put('0');
    }
    w.crlf();
    for (std::string_view f : kTokenRecordFields) {
        w.bulk(f);
    }
    t.length = w.length();
    return t;
}

constexpr LookupTemplate kLookupTemplate = build_lookup_template();

} // namespace

const std::size_t TokenRecordLookup::kLength = kLookupTemplate.length;

TokenRecordLookup::TokenRecordLookup(const Sha256Hex &digest) noexcept
    : bytes_(kLookupTemplate.bytes)
{
    std::memcpy(bytes_.data() + kLookupTemplate.digest_offset, digest.data(),
                digest.size());
}

std::string token_record_key(std::string_view digest_hex)
{
    std::string key(kTokenPrefix);
    key.append(digest_hex);
    return key;
}

std::string user_key(std::uint64_t uid)
{
    std::string key(kUserPrefix);
    key.append(std::to_string(uid));
    return key;
}

std::string user_tokens_key(std::uint64_t uid)
{
    std::string key(kUserTokensPrefix);
    key.append(std::to_string(uid));
    return key;
}

std::string username_key(std::string_view username)
{
    std::string key(kUsernamePrefix);
    key.append(username);
    return key;
}

std::string throttle_key(std::string_view scope, std::string_view subject)
{
    std::string key(kThrottlePrefix);
    key.append(scope);
    key.push_back(':');
    key.append(subject);
    return key;
}

} // namespace authtoken::keys
