#include "redis_keys.h"

#include <cstring>

namespace authtoken::keys {

namespace {

constexpr std::size_t decimal_digits(std::size_t n)
{
    std::size_t d = 1;
    while (n >= 10) {
        n /= 10;
        d++;
    }
    return d;
}

// "$<len>\r\n<bytes>\r\n"
constexpr std::size_t bulk_size(std::size_t len)
{
    return 1 + decimal_digits(len) + 2 + len + 2;
}

constexpr std::size_t kLookupArgs = 2 + kTokenRecordFields.size();

constexpr std::size_t lookup_length()
{
    std::size_t n = 1 + decimal_digits(kLookupArgs) + 2 + bulk_size(5) +
                    bulk_size(TokenRecordKey::kLength);
    for (std::string_view f : kTokenRecordFields) {
        n += bulk_size(f.size());
    }
    return n;
}

// Where the digest goes: after "*N\r\n$5\r\nHMGET\r\n$80\r\n" and the prefix.
constexpr std::size_t kDigestOffset =
    1 + decimal_digits(kLookupArgs) + 2 + bulk_size(5) + 1 +
    decimal_digits(TokenRecordKey::kLength) + 2 + kTokenPrefix.size();

class RespWriter {
  public:
    explicit RespWriter(char *out) : out_(out) {}
    void header(char type, std::size_t n)
    {
        out_[len_++] = type;
        char digits[20];
        std::size_t d = 0;
        do {
            digits[d++] = static_cast<char>('0' + n % 10);
            n /= 10;
        } while (n != 0);
        while (d > 0) {
            out_[len_++] = digits[--d];
        }
        crlf();
    }
    void bulk(std::string_view s)
    {
        header('$', s.size());
        std::memcpy(out_ + len_, s.data(), s.size());
        len_ += s.size();
        crlf();
    }

  private:
    void crlf()
    {
        out_[len_++] = '\r';
        out_[len_++] = '\n';
    }
    char *out_;
    std::size_t len_ = 0;
};

// The command with a zero digest, built once.
const std::array<char, 160> &lookup_template()
{
    static const std::array<char, 160> bytes = [] {
        std::array<char, 160> b{};
        static_assert(lookup_length() <= b.size());
        RespWriter w(b.data());
        w.header('*', kLookupArgs);
        w.bulk("HMGET");
        Sha256Hex zero;
        zero.fill('0');
        w.bulk(TokenRecordKey(zero).view());
        for (std::string_view f : kTokenRecordFields) {
            w.bulk(f);
        }
        return b;
    }();
    return bytes;
}

} // namespace

const std::size_t TokenRecordLookup::kLength = lookup_length();

TokenRecordLookup::TokenRecordLookup(const Sha256Hex &digest) noexcept
    : bytes_(lookup_template())
{
    std::memcpy(bytes_.data() + kDigestOffset, digest.data(), digest.size());
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
