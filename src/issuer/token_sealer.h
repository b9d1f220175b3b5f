// Token keys kept so that only the issuer can read them back.
//
// DRF's obtain_auth_token answers the same key on every login, so the key
// must be recoverable; Redis must not hold it in a usable form (a replica,
// a dump or MONITOR would hand out credentials). The user record keeps the
// key sealed with AES-256-GCM under a 32-byte secret that only authtokend
// and authtokenctl read (the secret file). The token's SHA-256 digest is
// the associated data, so a sealed key pasted next to another digest fails
// to open instead of yielding a key for the wrong record.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace authtoken
{

using SecretKey = std::array<unsigned char, 32>;

// Reads exactly 32 bytes from `path`. Refuses a file that other users may
// read (mode & 077), since whoever has the secret and a Redis dump has
// every key. Throws std::runtime_error naming the problem.
SecretKey load_secret_file(const std::string &path);

// Creates `path` with 32 bytes from the CSPRNG, mode 0600, failing if it
// already exists (a new secret would make every sealed key unreadable).
void create_secret_file(const std::string &path);

class TokenSealer
{
  public:
    explicit TokenSealer(const SecretKey &secret) : secret_(secret) {}

    // "v1:" + hex(nonce[12] || ciphertext || tag[16]); a fresh random
    // nonce each time.
    std::string seal(std::string_view key, std::string_view digest_hex) const;

    // The key, or nullopt when `sealed` is malformed, was sealed under
    // another secret, was tampered with, or belongs to another digest.
    std::optional<std::string> unseal(std::string_view sealed,
                                      std::string_view digest_hex) const;

  private:
    SecretKey secret_;
};

} // namespace authtoken
