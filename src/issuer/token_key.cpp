#include "issuer/token_key.h"

#include <openssl/rand.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <stdexcept>

namespace authtoken
{

std::string generate_token_key()
{
    unsigned char raw[kTokenKeyLength / 2];
    if (RAND_bytes(raw, sizeof raw) != 1) {
        throw std::runtime_error("OpenSSL RAND_bytes failed");
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string key;
    key.reserve(kTokenKeyLength);
    for (unsigned char b : raw) {
        key.push_back(hex[b >> 4]);
        key.push_back(hex[b & 0x0f]);
    }
    return key;
}

std::string utc_timestamp_now()
{
    using namespace std::chrono;
    auto now = system_clock::now();
    std::time_t secs = system_clock::to_time_t(now);
    auto millis =
        duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[96]; // room for any int, so the compiler sees no truncation
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                  tm.tm_min, tm.tm_sec, static_cast<int>(millis));
    return buf;
}

} // namespace authtoken
