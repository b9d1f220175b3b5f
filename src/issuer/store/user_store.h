// Users and their tokens in Redis (redis/SCHEMA.md), for authtokend and
// authtokenctl. Reads are plain commands; every write is one of the Lua
// scripts in redis/, so each operation is atomic and publishes the digests
// it touches on authtoken:revocations.
#pragma once

#include "core/token_record.h"
#include "issuer/django_import.h"
#include "issuer/store/redis_client.h"
#include "issuer/token_sealer.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace authtoken
{

struct UserRecord {
    std::uint64_t uid = 0;
    std::string username;
    std::string password;
    bool is_active = false;
    bool is_staff = false;
    bool is_superuser = false;
    std::string email;
    std::string date_joined;
    std::string token_digest; // "" when the user has no token
    std::string token_sealed;
    std::string token_created;
    // The token record's `expires`: Unix seconds, 0 = never (DRF).
    std::int64_t token_expires = 0;

    // A token whose `expires` has passed at `now` (Unix seconds): nginx
    // refuses it (judge_token_record), and the next get_or_create_token or
    // login replaces it.
    bool token_expired(std::int64_t now) const
    {
        return !token_digest.empty() && token_expires != 0 &&
               token_expires <= now;
    }
};

// When a new token expires: `at` (Unix seconds) when non-zero, else `ttl`
// seconds from now by Redis's clock when non-zero, else never (DRF).
struct TokenExpiry {
    std::int64_t ttl = 0;
    std::int64_t at = 0;
};

struct NewUser {
    std::string username;
    std::string password; // encoded (make_password / make_unusable_password)
    bool is_active = true;
    bool is_staff = false;
    bool is_superuser = false;
    std::string email;
};

struct IssuedToken {
    std::string key;
    bool created = false; // false: the user's existing token
    // Created in place of an existing token (now revoked): regenerate, or
    // a token whose sealed key was missing.
    bool replaced = false;
    // tokens_per_user = many: how many tokens were deleted for it (dropped
    // at the limit, expired ones swept, or every other with replace_all).
    int dropped = 0;
    // Of those, the expired ones swept (not dropped to make room).
    int swept = 0;
};

// tokens_per_user (docs/authtokend.md): DRF's one token per user (the
// default), or knox's token per login.
enum class TokensPerUser { one, many };
// What a login does in `many` mode when the user already holds
// token_limit_per_user tokens: refuse it (knox, the default) or delete
// the oldest tokens to make room.
enum class TokenLimitPolicy { refuse, drop_oldest };

// How new tokens are made (the issuer's settings).
struct TokenPolicy {
    TokensPerUser mode = TokensPerUser::one;
    unsigned limit = 100; // many mode: 1 to keys::kMaxTokensPerUser
    TokenLimitPolicy on_limit = TokenLimitPolicy::refuse;
};

// One token as GET /api-tokens/ and `authtokenctl tokens` show it: never
// its key, never its whole digest.
struct TokenInfo {
    // The first 16 hex digits of the digest: names the token among the
    // user's, and is no credential (the digest itself is not one either,
    // but nothing here hands out more of it than needed).
    std::string id;
    std::string digest; // for the issuer's own use; never rendered
    std::string name;   // "" when unnamed (and for DRF's one token)
    std::string created;
    std::int64_t expires = 0;   // Unix seconds, 0 = never
    std::int64_t last_used = 0; // Unix seconds, 0 = not recorded
    std::string last_addr;      // "" = not recorded
};
inline constexpr std::size_t kTokenIdLength = 16;

struct ImportSummary {
    long long created = 0;
    long long updated = 0;
    long long unchanged = 0;
};

// One batch of `authtokenctl migrate` (schema version 1 to 2).
struct MigrateBatch {
    long long migrated = 0;     // user records rewritten in version 2's form
    long long already = 0;      // already in it (a re-run changes nothing)
    std::uint64_t last_uid = 0; // the batch's last uid; 0 = none: done
};

// The name the token record of `digest_hex` has in the Redis behind
// `conn` now, for a read (redis/SCHEMA.md, Versioning): schema version 3's
// (keys::token_record_key) unless the database is still of version 1 or 2
// or being migrated and the record there still has its hex name.
// `current` caches that the database is of version 3 (or unmarked): a
// schema never goes back, so it is asked at most until then. Throws
// RedisError.
std::string token_record_read_key(RedisConnection &conn,
                                  std::string_view digest_hex, bool &current);

// One batch of `authtokenctl migrate`'s second step (schema version 2 to
// 3: token records renamed, redis/authtoken.lua authtoken_migrate_tokens).
struct MigrateTokensBatch {
    std::string cursor;      // the SCAN cursor to go on from; "0" = done
    long long renamed = 0;   // hex names renamed in this batch
    long long looked_at = 0; // token record keys the SCAN step returned
};

class NoSuchUser : public std::runtime_error
{
  public:
    using std::runtime_error::runtime_error;
};
// The user record a login checked changed before its token was issued
// (issue_token_for_login).
class CredentialsChanged : public std::runtime_error
{
  public:
    using std::runtime_error::runtime_error;
};
// A `many`-mode login with token_limit_per_user tokens and the refuse
// policy (add_token).
class TokenLimitReached : public std::runtime_error
{
  public:
    using std::runtime_error::runtime_error;
};
class UsernameTaken : public std::runtime_error
{
  public:
    using std::runtime_error::runtime_error;
};
// A write script was sent but Redis did not answer in time: it ran before
// then, or it never will (its deadline, redis/lib/deadline.lua). A RedisError,
// so that callers answering "Redis failed" (the daemon's 503) need nothing
// more; callers reporting an outcome (the CLI) must say it is unknown.
class WriteOutcomeUnknown : public RedisError
{
  public:
    using RedisError::RedisError;
};
// A sealed key that does not open: the secret file is not the one the key
// was sealed with, or the record was tampered with.
class SealBroken : public std::runtime_error
{
  public:
    using std::runtime_error::runtime_error;
};

// The longest value a user record holds with the default hashers:
// Django's argon2id at its parameters ("argon2$argon2id$v=19$m=102400,t=2,
// p=8$" + 22 + "$" + 43 characters, about 104 bytes; pbkdf2_sha256 is 88,
// bcrypt_sha256 75, the sealed key 49, the digest 32), rounded up. With
// Redis's hash-max-listpack-value at least this, every user record and
// token record stays a listpack (redis/redis.conf sets it); below it they
// still work, in the hashtable encoding, several times larger
// (docs/capacity.md).
inline constexpr long long kListpackValueNeeded = 128;

// What a separate token directory holds for a token record and the user
// store does not learn (docs/operations.md, "Two stores"): the `expires`
// sliding renewal pushed out (authtoken_touch), `last_used` (Unix seconds)
// and `last_addr` that nginx wrote. 0 and "" = none; `found` false when
// the directory lacks the record.
struct DirectoryTokenFields {
    bool found = false;
    std::int64_t expires = 0;
    std::int64_t last_used = 0;
    std::string last_addr;
};
// Those fields for each of `digests_hex` (in order), read from `directory`
// (a connection to it) in one round trip whatever their number (at most
// keys::kMaxTokensPerUser + 1 or one page). Throws RedisError.
std::vector<DirectoryTokenFields>
read_directory_fields(RedisConnection &directory,
                      const std::vector<std::string> &digests_hex);
// The directory's `expires` of one token record; nullopt for a record it
// lacks, or one without a number. Throws RedisError.
std::optional<std::int64_t> read_renewed_expiry(RedisConnection &directory,
                                                std::string_view digest_hex);
// The directory's `expires` of each of `digests_hex` (in order; 0 for a
// record it lacks or one without a number), in one round trip. Throws
// RedisError.
std::vector<std::int64_t>
read_renewed_expiries(RedisConnection &directory,
                      const std::vector<std::string> &digests_hex);

class UserStore
{
  public:
    UserStore(RedisConnection &conn, const ScriptLibrary &scripts,
              const TokenSealer &sealer)
        : conn_(conn), scripts_(scripts), sealer_(sealer)
    {
    }

    std::optional<UserRecord> find_user(std::string_view username);
    std::optional<UserRecord> find_user_by_uid(std::uint64_t uid);

    // The token record of `digest_hex` judged as the module judges it
    // (judge_token_record, at `now` Unix seconds), with the uid and user it
    // names (set when the verdict names a user).
    struct TokenLookup {
        TokenJudgement judgement{TokenVerdict::unknown, 0};
        std::uint64_t uid = 0;
        std::string user;
    };
    // `renewed_expiry`: with a separate token directory, the `expires` the
    // directory holds for this digest (sliding renewal happens there, and
    // the user store never learns it: docs/operations.md, "Two stores"); a
    // later one than the user store's counts.
    TokenLookup
    lookup_token(std::string_view digest_hex, std::int64_t now,
                 std::optional<std::int64_t> renewed_expiry = std::nullopt);
    std::vector<UserRecord> list_users();
    // How many users there are (ZCARD authtoken:users).
    std::size_t user_count();

    // Throws UsernameTaken. With `with_token`, the token is created in the
    // same script (auto_create_token).
    std::uint64_t create_user(const NewUser &user, bool with_token);

    // Every token created from now on without an explicit expiry expires
    // `seconds` after its creation (the token_ttl setting); 0 = never.
    void set_token_ttl(std::int64_t seconds)
    {
        token_ttl_ = seconds;
    }

    // Every token created from now on with an expiry gets the sliding
    // renewal (the token_auto_refresh setting, knox's AUTO_REFRESH): each
    // use nginx reports (auth_token_last_used) pushes its expiry out to its
    // lifetime after that use, never past `max_ttl_seconds` after its
    // creation (token_max_ttl; 0 = no cap). The record carries both
    // (`renew`, `cap`), see redis/SCHEMA.md.
    void set_token_renewal(bool auto_refresh, std::int64_t max_ttl_seconds)
    {
        renewal_ = auto_refresh ? std::to_string(max_ttl_seconds) : "";
    }

    // With a separate token directory (docs/operations.md, "Two stores"):
    // reads the `expires` the directory holds for token digests (in order,
    // 0 = it holds none: read_renewed_expiries()), where sliding renewal
    // pushes it without the user store learning it; nullopt when the
    // directory cannot be read. get_or_create_token() and
    // issue_token_for_login() judge "expired" with it, as the edges and
    // authenticate_token() do, so a token the edges still renew is handed
    // back, not replaced (a directory that does not answer: a token that
    // renews, within its cap, is handed back; the user store's expiry
    // decides for the others); add_token() and add_token_for_login()
    // sweep expired tokens with it, so a token the edges still renew is
    // neither swept nor left out of the limit's count (a directory that
    // does not answer: no token that renews is swept, all count).
    using RenewedExpiry =
        std::function<std::optional<std::vector<std::int64_t>>(
            const std::vector<std::string> &)>;
    void set_renewed_expiry(RenewedExpiry source)
    {
        renewed_expiry_ = std::move(source);
    }

    // With a separate token directory: read_directory_fields() on it, for
    // what list_tokens() and show_directory_expiry() show (the renewed
    // expiry, last use and address, as the edges see them); nullopt when
    // the directory cannot be read (the user store's own values are shown
    // then, without an error).
    using DirectoryFields =
        std::function<std::optional<std::vector<DirectoryTokenFields>>(
            const std::vector<std::string> &)>;
    void set_directory_fields(DirectoryFields source)
    {
        directory_fields_ = std::move(source);
    }
    // The users' token_expires as the directory has it (DRF's mode: the
    // `token` field's record), in one read for all of them; nothing in one
    // store.
    void show_directory_expiry(const std::vector<UserRecord *> &users);

    // The user's token, created if it has none or if it has expired (the
    // expired one is deleted and its revocation published). A created
    // token gets `expiry`, or token_ttl when it is empty. Throws
    // NoSuchUser, SealBroken.
    IssuedToken get_or_create_token(std::string_view username,
                                    TokenExpiry expiry = {});
    // The same for a login whose password check saw `seen` and verified
    // `verified_password` (the encoded hash now stored, after any upgrade):
    // issued only if the uid, that hash, is_active and the token seen are
    // all unchanged, in one script. Throws CredentialsChanged, NoSuchUser,
    // SealBroken.
    IssuedToken issue_token_for_login(std::string_view username,
                                      const UserRecord &seen,
                                      std::string_view verified_password);
    // A new token replacing the old one in one step, with `expiry` (or
    // token_ttl). Throws NoSuchUser.
    IssuedToken regenerate_token(std::string_view username,
                                 TokenExpiry expiry = {});
    // The key of an existing token (from the sealed form). Throws
    // SealBroken.
    std::string reveal_token(const UserRecord &user) const;

    // tokens_per_user = many: a new token beside the user's others (knox),
    // named `name`, with `expiry` (or token_ttl); with `replace_all`
    // every other token of the user is deleted in the same step. The key
    // is returned once and not kept. `policy` gives the limit and what
    // happens at it. Throws NoSuchUser, TokenLimitReached.
    IssuedToken add_token(std::string_view username, std::string_view name,
                          const TokenPolicy &policy, TokenExpiry expiry = {},
                          bool replace_all = false);
    // The same for a login whose password check saw `seen` and verified
    // `verified_password`: made only if the uid, that hash and is_active
    // are unchanged. Throws also CredentialsChanged.
    IssuedToken add_token_for_login(std::string_view username,
                                    std::string_view name,
                                    const TokenPolicy &policy,
                                    const UserRecord &seen,
                                    std::string_view verified_password);
    // Every token the user holds (its `token` field and its `many` set),
    // oldest first, with the fields of their records (reads only; at most
    // keys::kMaxTokensPerUser + 1).
    std::vector<TokenInfo> list_tokens(const UserRecord &user);
    // How many tokens the user holds: its `token` field and its set.
    std::size_t count_tokens(const UserRecord &user);
    // True when `digest_hex` is one of the user's tokens (either mode).
    bool holds_token(const UserRecord &user, std::string_view digest_hex);
    // Deletes one token, only if it is the user's. False when it is not
    // (or no longer). Throws NoSuchUser.
    bool revoke_one(std::string_view username, std::string_view digest_hex);

    // Deletes every token the user holds (in `many` mode all of them, in
    // one function); returns how many. Throws NoSuchUser.
    int revoke_tokens(std::string_view username);
    // False when the user had no token. Throws NoSuchUser.
    bool revoke_token(std::string_view username)
    {
        return revoke_tokens(username) > 0;
    }
    // False when nothing changed. Throws NoSuchUser.
    bool set_active(std::string_view username, bool active);
    // With `expected_current` non-empty, stores only if the current hash is
    // still that one (returns false otherwise). Throws NoSuchUser.
    // With `revoke_tokens`, every token of the user is deleted in the same
    // function (tokens_per_user = many; changepassword --revoke-token).
    bool set_password(std::string_view username, std::string_view encoded,
                      std::string_view expected_current = {},
                      bool revoke_tokens = false);
    // Throws NoSuchUser.
    void delete_user(std::string_view username);

    // One script for the whole file. Throws ScriptRefused on a conflict
    // with existing data (nothing is written then).
    // Users per import_django call: each call is one atomic Redis function
    // that blocks every other client while it runs, so it is bounded
    // (docs/capacity.md has its measured time).
    static constexpr std::size_t kImportBatch = 500;
    // Checks (check_only: conflicts with Redis, no write) or writes
    // users[begin, end) (at most kImportBatch) in one function call. Throws
    // ScriptRefused on a conflict, WriteOutcomeUnknown on a timeout.
    ImportSummary import_batch(const std::vector<ImportedUser> &users,
                               std::size_t begin, std::size_t end,
                               bool check_only);

    // Users per migrate call: like kImportBatch, each call is one atomic
    // Redis function that blocks every other client while it runs
    // (docs/capacity.md has its measured time).
    static constexpr std::size_t kMigrateBatch = 100;
    // Brings the user records of the next `limit` uids after `after` to
    // schema version 2 (redis/authtoken.lua, authtoken_migrate) in one
    // function call, and marks the database version 2. Token records are
    // the same in both versions: verdicts do not change while it runs.
    // Throws ScriptRefused (a schema it does not know), ScriptTimedOut.
    MigrateBatch migrate_batch(std::uint64_t after, std::size_t limit);

    // Keys per migrate_tokens call (a SCAN COUNT: bounded work per call).
    static constexpr std::size_t kMigrateTokensBatch = 500;
    // One SCAN step of the rename to schema version 3 in the Redis behind
    // `conn` (this store's, or the token directory's: the same function),
    // from `cursor`; the first call marks that database 3-partial, the
    // one whose cursor comes back "0" marks it 3. Throws ScriptRefused
    // (schema 1, or one it does not know), ScriptTimedOut.
    MigrateTokensBatch migrate_tokens_batch(RedisConnection &conn,
                                            const std::string &cursor,
                                            std::size_t count);

  private:
    struct Candidate {
        std::string key;
        std::string digest;
        std::string sealed;
        std::string created;
    };
    Candidate new_candidate(bool sealed = true) const;
    // `seen`: the user record as a login read it (its uid), else nullptr.
    IssuedToken add(std::string_view username, std::string_view name,
                    const TokenPolicy &policy, TokenExpiry expiry,
                    bool replace_all,
                    const std::vector<std::string_view> &expected,
                    const UserRecord *seen = nullptr);
    // add_token's sweep arguments (redis/authtoken.lua) with a separate
    // token directory: the directory's `expires` of the user's tokens
    // that renew and whose copy here has passed or is about to
    // (kRenewalMargin), read there in one round trip, or 'keep' when it
    // does not answer. Empty when there is nothing to ask (one store, no
    // such token).
    std::vector<std::string> sweep_arguments(std::string_view username,
                                             const UserRecord *seen);
    // `seen`: the user record as the caller read it (a login's), else
    // read here when the directory's expiry may matter.
    IssuedToken issue(std::string_view username, const char *mode,
                      TokenExpiry expiry,
                      const std::vector<std::string_view> &expected = {},
                      const UserRecord *seen = nullptr);
    // See issue(): seconds before the user store's expiry from which a
    // 'get' asks the directory for a renewed one.
    static constexpr std::int64_t kRenewalMargin = 60;
    void read_token_expiry(UserRecord &user);
    Reply run(std::string_view script,
              const std::vector<std::string_view> &keys,
              const std::vector<std::string_view> &args);

    RedisConnection &conn_;
    // token_record_read_key's cache: the database is of version 3.
    bool records_current_ = false;
    const ScriptLibrary &scripts_;
    const TokenSealer &sealer_;
    std::int64_t token_ttl_ = 0;
    std::string renewal_;          // authtoken.lua's renewal argument; '' = off
    RenewedExpiry renewed_expiry_; // empty: one store
    DirectoryFields directory_fields_; // empty: one store
};

} // namespace authtoken
