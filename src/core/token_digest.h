// SHA-256 of a token key, in lowercase hex. Redis is keyed by this digest so
// that nothing read from Redis (a replica, a dump) can be replayed as a key.
#pragma once

#include <array>
#include <memory>
#include <string_view>

struct evp_md_st;
struct evp_md_ctx_st;

namespace authtoken
{

using Sha256Hex = std::array<char, 64>;
using Sha256 = std::array<unsigned char, 32>;

// Holds the fetched digest implementation and one context, so that hashing
// on the hot path allocates nothing. One per thread (an nginx worker has
// one); not thread-safe.
class TokenDigester
{
  public:
    TokenDigester();
    // Computes SHA-256(key) as 64 lowercase hex characters. Returns false
    // only if OpenSSL fails.
    bool digest_hex(std::string_view key, Sha256Hex &out) noexcept;
    // Both forms at once: the raw bytes key the nginx cache, the hex names
    // the Redis record.
    bool digest(std::string_view key, Sha256 &raw, Sha256Hex &hex) noexcept;

  private:
    struct FreeMd {
        void operator()(evp_md_st *md) const noexcept;
    };
    struct FreeCtx {
        void operator()(evp_md_ctx_st *ctx) const noexcept;
    };
    std::unique_ptr<evp_md_st, FreeMd> md_;
    std::unique_ptr<evp_md_ctx_st, FreeCtx> ctx_;
};

// Convenience for code off the hot path (daemon, CLI, tests).
Sha256Hex token_digest_hex(std::string_view key);

void digest_to_hex(const Sha256 &raw, Sha256Hex &hex) noexcept;
// Parses 64 hex digits (either case), as published on the revocation
// channel. False for anything else.
bool digest_from_hex(std::string_view hex, Sha256 &raw) noexcept;

} // namespace authtoken
