#include "core/redis_keys.h"

#include "core/digit_values.h"

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
    std::size_t digest_offset = 0; // where the digest's spelling goes
};

// HMGET authtoken:token:<digest_length zeros> uid user active expires, in
// RESP.
constexpr LookupTemplate build_lookup_template(std::size_t digest_length)
{
    LookupTemplate t;
    RespWriter w(t.bytes);
    w.header('*', 2 + kTokenRecordFields.size());
    w.bulk("HMGET");
    w.header('$', kTokenPrefix.size() + digest_length);
    w.raw(kTokenPrefix);
    t.digest_offset = w.length();
    for (std::size_t i = 0; i < digest_length; i++) {
        w.put('0');
    }
    w.crlf();
    for (std::string_view f : kTokenRecordFields) {
        w.bulk(f);
    }
    t.length = w.length();
    return t;
}

constexpr LookupTemplate kLookupTemplate =
    build_lookup_template(kDigestBase64Length);
constexpr LookupTemplate kLegacyLookupTemplate =
    build_lookup_template(std::tuple_size_v<Sha256Hex>);

constexpr char kBase64Url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// Encodes `n` bytes given by `byte(i)` into `out` (which holds
// ceil(n * 4 / 3) characters): RFC 4648 section 5 without padding.
template <typename ByteAt, typename Out>
void encode_base64url(std::size_t n, ByteAt byte, Out out) noexcept
{
    std::size_t o = 0;
    for (std::size_t i = 0; i < n; i += 3) {
        unsigned v = static_cast<unsigned>(byte(i)) << 16;
        if (i + 1 < n) {
            v |= static_cast<unsigned>(byte(i + 1)) << 8;
        }
        if (i + 2 < n) {
            v |= static_cast<unsigned>(byte(i + 2));
        }
        std::size_t chars = n - i >= 3 ? 4 : n - i + 1;
        for (std::size_t c = 0; c < chars; c++) {
            out(o++, kBase64Url[(v >> (18 - 6 * c)) & 0x3f]);
        }
    }
}

} // namespace

std::string base64url(std::string_view bytes)
{
    std::string out((bytes.size() * 4 + 2) / 3, '\0');
    encode_base64url(
        bytes.size(),
        [&](std::size_t i) { return static_cast<unsigned char>(bytes[i]); },
        [&](std::size_t o, char c) { out[o] = c; });
    return out;
}

bool digest_base64url(const Sha256Hex &digest,
                      std::array<char, kDigestBase64Length> &out) noexcept
{
    std::array<unsigned char, 32> raw{};
    for (std::size_t i = 0; i < raw.size(); i++) {
        int hi = hex_digit_value(digest[2 * i]);
        int lo = hex_digit_value(digest[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        raw[i] = static_cast<unsigned char>(hi << 4 | lo);
    }
    encode_base64url(
        raw.size(), [&](std::size_t i) { return raw[i]; },
        [&](std::size_t o, char c) { out[o] = c; });
    return true;
}

bool digest_hex_of_base64url(std::string_view text, Sha256Hex &out) noexcept
{
    if (text.size() != kDigestBase64Length) {
        return false;
    }
    std::array<unsigned char, 33> raw{};
    for (std::size_t i = 0; i < text.size(); i++) {
        int v = base64url_digit_value(text[i]);
        if (v < 0) {
            return false;
        }
        std::size_t bit = i * 6;
        for (int b = 5; b >= 0; b--, bit++) {
            if ((v >> b) & 1) {
                raw[bit / 8] |= static_cast<unsigned char>(0x80 >> (bit % 8));
            }
        }
    }
    // 43 characters carry 258 bits: the last two must be zero (the one
    // canonical spelling of 32 bytes).
    if (raw[32] != 0) {
        return false;
    }
    constexpr char kHex[] = "0123456789abcdef";
    for (std::size_t i = 0; i < 32; i++) {
        out[2 * i] = kHex[raw[i] >> 4];
        out[2 * i + 1] = kHex[raw[i] & 0xf];
    }
    return true;
}

TokenRecordKey::TokenRecordKey(const Sha256Hex &digest) noexcept
{
    kTokenPrefix.copy(bytes_.data(), kTokenPrefix.size());
    std::array<char, kDigestBase64Length> b64{};
    digest_base64url(digest, b64); // the module's digests are its own hex
    std::memcpy(bytes_.data() + kTokenPrefix.size(), b64.data(), b64.size());
}

const std::size_t TokenRecordLookup::kLength = kLookupTemplate.length;

TokenRecordLookup::TokenRecordLookup(const Sha256Hex &digest) noexcept
    : bytes_(kLookupTemplate.bytes)
{
    std::array<char, kDigestBase64Length> b64{};
    digest_base64url(digest, b64); // the module's digests are its own hex
    std::memcpy(bytes_.data() + kLookupTemplate.digest_offset, b64.data(),
                b64.size());
}

const std::size_t LegacyTokenRecordLookup::kLength =
    kLegacyLookupTemplate.length;

LegacyTokenRecordLookup::LegacyTokenRecordLookup(
    const Sha256Hex &digest) noexcept
    : bytes_(kLegacyLookupTemplate.bytes)
{
    std::memcpy(bytes_.data() + kLegacyLookupTemplate.digest_offset,
                digest.data(), digest.size());
}

std::string token_record_key(std::string_view digest_hex)
{
    Sha256Hex hex{};
    std::array<char, kDigestBase64Length> b64{};
    if (digest_hex.size() != hex.size()) {
        throw std::invalid_argument("a token digest is 64 hex digits");
    }
    digest_hex.copy(hex.data(), hex.size());
    if (!digest_base64url(hex, b64)) {
        throw std::invalid_argument("a token digest is 64 hex digits");
    }
    std::string key(kTokenPrefix);
    key.append(b64.data(), b64.size());
    return key;
}

std::string legacy_token_record_key(std::string_view digest_hex)
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
