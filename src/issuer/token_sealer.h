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
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace authtoken
{

using SecretKey = std::array<unsigned char, 32>;

// 32 secret bytes on a page of their own, kept out of core dumps
// (MADV_DONTDUMP) and, where the limits allow, out of swap (mlock); wiped
// and unmapped when destroyed. Whoever has the secret and a Redis dump has
// every key, and a core file of authtokend is easily sent around.
class SecretPage
{
  public:
    SecretPage();  // zeroed; throws std::runtime_error if mmap fails
    ~SecretPage(); // OPENSSL_cleanse, then munmap
    SecretPage(const SecretPage &) = delete;
    SecretPage &operator=(const SecretPage &) = delete;
    unsigned char *data()
    {
        return bytes_;
    }
    const unsigned char *data() const
    {
        return bytes_;
    }
    static constexpr std::size_t size()
    {
        return 32;
    }

  private:
    unsigned char *bytes_;
};

// Reads exactly 32 bytes from `path` straight into a SecretPage. Refuses a
// symbolic link (O_NOFOLLOW: a link could point the daemon at another
// file), anything but a regular file, a file owned by another user than
// the one running (who else could replace it), and a file that other users
// may read (mode & 077). Throws std::runtime_error naming the problem.
std::unique_ptr<SecretPage> load_secret_file(const std::string &path);

// Creates `path` with 32 bytes from the CSPRNG, mode 0600, failing if it
// already exists or is a symbolic link (a new secret would make every
// sealed key unreadable).
void create_secret_file(const std::string &path);

class TokenSealer
{
  public:
    // Copies `secret` into a SecretPage; the caller wipes its own copy.
    explicit TokenSealer(const SecretKey &secret);
    explicit TokenSealer(std::unique_ptr<SecretPage> secret)
        : secret_(std::move(secret))
    {
    }

    // The sealed form, binary (schema version 2, redis/SCHEMA.md), with a
    // fresh random nonce each time:
    //   0x02 || nonce[12] || AES-256-GCM(the 20 bytes a 40-lowercase-hex
    //   key spells) || tag[16], associated data 0x02 || digest_hex:
    //   49 bytes, for every key DRF or this issuer generates;
    //   0x01 || nonce[12] || AES-256-GCM(key as given) || tag[16],
    //   associated data digest_hex: any other key (a Django import may
    //   carry one), and what `authtokenctl migrate` turns a version-1
    //   value into (the same bytes, without the hex).
    std::string seal(std::string_view key, std::string_view digest_hex) const;

    // The key, or nullopt when `sealed` is malformed, was sealed under
    // another secret, was tampered with, or belongs to another digest.
    // Opens both binary forms above and schema version 1's
    // "v1:" + hex(nonce[12] || ciphertext || tag[16]) (digest_hex as
    // associated data), which a database keeps until it is migrated.
    std::optional<std::string> unseal(std::string_view sealed,
                                      std::string_view digest_hex) const;

  private:
    std::unique_ptr<SecretPage> secret_;
};

} // namespace authtoken
