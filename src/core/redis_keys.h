// The one place Redis key names are spelled. redis/SCHEMA.md documents them;
// the module, the daemon and the CLI all build keys here.
#pragma once

#include "core/token_digest.h"

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace authtoken::keys
{

// redis/SCHEMA.md, Versioning. Version 2 stores the user record's token
// digest and sealed key binary; version 3 names token records by the
// base64url spelling of their digest (TokenRecordKey) instead of its 64
// hex digits. The module reads versions 1 to 3 and the migration mark
// between 2 and 3 (kSchemaMigrating): while the schema it read is not 3 it
// also looks the hex-named record up (LegacyTokenRecordLookup).
inline constexpr int kSchemaVersion = 3;
inline constexpr int kTokenRecordSchemaSince = 1;
// The schema while `authtokenctl migrate` renames token records from hex
// to base64url: every writer writes the new name and renames an old one it
// meets; records not reached yet still have the hex name.
inline constexpr std::string_view kSchemaMigrating = "3-partial";

inline constexpr std::string_view kPrefix = "authtoken:";
inline constexpr std::string_view kSchema = "authtoken:schema";
inline constexpr std::string_view kTokenPrefix = "authtoken:token:";
inline constexpr std::string_view kUserPrefix = "authtoken:user:";
inline constexpr std::string_view kUsernamePrefix = "authtoken:username:";
inline constexpr std::string_view kUsers = "authtoken:users";
inline constexpr std::string_view kNextUid = "authtoken:next-uid";
inline constexpr std::string_view kThrottlePrefix = "authtoken:throttle:";
// tokens_per_user = many: the digests of one user's tokens, a sorted set
// scored by creation time (Unix milliseconds, Redis's clock), at most
// token_limit_per_user (itself at most kMaxTokensPerUser) members.
inline constexpr std::string_view kUserTokensPrefix = "authtoken:user-tokens:";
// The bound on every function that walks a user's tokens (a Redis
// function blocks every other client while it runs).
inline constexpr unsigned kMaxTokensPerUser = 1000;
// Every change to a token record (revoked, rotated, user deactivated,
// activated or deleted) is published here. The message is the digest, a
// space and that message's number in kRevocationSequence (the module also
// accepts the digest alone, without a number, from other publishers).
inline constexpr std::string_view kRevocationChannel = "authtoken:revocations";
// A counter every script INCRs for each message it publishes on
// kRevocationChannel, in the same script: the module compares it with the
// numbers it saw to notice messages it missed (a replica's full resync, a
// gap with no subscriber), and then stops trusting its whole cache.
inline constexpr std::string_view kRevocationSequence =
    "authtoken:revocation-seq";

// Written by every authtokend on the primary every heartbeat_interval
// (SET, the writer's Unix time in milliseconds) and read by the module once
// a second per worker when auth_token_max_lag is set: a value that has not
// changed for that long means this edge's Redis no longer gets news from
// the primary. Only the change matters, never the value against a clock.
inline constexpr std::string_view kHeartbeat = "authtoken:heartbeat";

// The split layout (directory_url, redis/SCHEMA.md "Two stores"). In the
// user store: the id of the token directory it feeds (its presence makes
// every library function append to the outbox instead of publishing), the
// outbox (a stream, one entry `<seq>-1 d <digest bytes>` per changed
// digest), its counter, and the last number the directory has applied and
// the issuer acknowledged.
inline constexpr std::string_view kDirectoryId = "authtoken:directory-id";
inline constexpr std::string_view kOutbox = "authtoken:outbox";
inline constexpr std::string_view kOutboxSequence = "authtoken:outbox-seq";
inline constexpr std::string_view kOutboxAcked = "authtoken:outbox-acked";
// In the token directory: a hash of `id`, `applied` (the last outbox number
// applied there, the fence), `state` (ready | rebuilding) and `from`.
inline constexpr std::string_view kDirectory = "authtoken:directory";

// Fields of a token record, in the order the module asks for them (HMGET).
inline constexpr std::array<std::string_view, 4> kTokenRecordFields = {
    "uid", "user", "active", "expires"};

// base64url (RFC 4648 section 5, alphabet A-Z a-z 0-9 - _, no `=`
// padding) of `bytes`: the spelling of a digest in a token record's key
// since schema version 3 (32 bytes -> 43 characters).
std::string base64url(std::string_view bytes);

// The 43 base64url characters of the 32 bytes that `digest` spells in hex
// (lower or upper case), into `out`, without allocating (the module's hot
// path). False, with `out` unspecified, when `digest` is not hex.
inline constexpr std::size_t kDigestBase64Length = 43;
bool digest_base64url(const Sha256Hex &digest,
                      std::array<char, kDigestBase64Length> &out) noexcept;

// The reverse, for a key read back (the directory rebuild's sweep): the 64
// lowercase hex digits of a 43-character base64url digest. False when
// `text` is not exactly that.
bool digest_hex_of_base64url(std::string_view text, Sha256Hex &out) noexcept;

// "authtoken:token:<43 base64url>", built without allocating (module hot
// path): schema version 3's name of the token record of `digest`.
class TokenRecordKey
{
  public:
    static constexpr std::size_t kLength =
        kTokenPrefix.size() + kDigestBase64Length;

    explicit TokenRecordKey(const Sha256Hex &digest) noexcept;
    std::string_view view() const noexcept
    {
        return {bytes_.data(), bytes_.size()};
    }

  private:
    std::array<char, kLength> bytes_{};
};

// The module's lookup, HMGET <record key> uid user active expires, already
// in RESP: hiredis takes it as is (redisAsyncFormattedCommand), so a lookup
// neither formats nor allocates a command. Same bytes as hiredis's own
// formatting of that argv.
class TokenRecordLookup
{
  public:
    static constexpr std::size_t kCapacity = 160;
    static const std::size_t kLength; // of resp(), at most kCapacity

    explicit TokenRecordLookup(const Sha256Hex &digest) noexcept;
    std::string_view resp() const noexcept
    {
        return {bytes_.data(), kLength};
    }

  private:
    std::array<char, kCapacity> bytes_;
};

// The same HMGET of the record's schema-2 name, authtoken:token:<64 hex>:
// what the module also asks while the schema is not 3 (a database not
// migrated yet, or being migrated).
class LegacyTokenRecordLookup
{
  public:
    static const std::size_t kLength; // of resp()

    explicit LegacyTokenRecordLookup(const Sha256Hex &digest) noexcept;
    std::string_view resp() const noexcept
    {
        return {bytes_.data(), kLength};
    }

  private:
    std::array<char, TokenRecordLookup::kCapacity> bytes_;
};

// Schema version 3's token record key of the digest `digest_hex` (64 hex
// digits); the hex spelling of schema versions 1 and 2 is
// legacy_token_record_key(). Throws std::invalid_argument when
// `digest_hex` is not 64 hex digits.
std::string token_record_key(std::string_view digest_hex);
std::string legacy_token_record_key(std::string_view digest_hex);
std::string user_key(std::uint64_t uid);
std::string username_key(std::string_view username);
std::string user_tokens_key(std::uint64_t uid);
std::string throttle_key(std::string_view scope, std::string_view subject);

} // namespace authtoken::keys
