#include "issuer/store/user_store.h"

#include "core/redis_keys.h"
#include "core/token_digest.h"
#include "issuer/token_key.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <ctime>

namespace authtoken
{
namespace
{

std::string digest_of(std::string_view key)
{
    Sha256Hex hex = token_digest_hex(key);
    return std::string(hex.data(), hex.size());
}

// The user record's `token`: the digest's 32 bytes (schema version 2), or
// its 64 hex digits (version 1, until `authtokenctl migrate`); hex either
// way for the rest of the issuer.
std::string stored_digest_hex(const std::string &stored)
{
    if (stored.size() != 32) {
        return stored;
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(64);
    for (unsigned char b : stored) {
        out.push_back(hex[b >> 4]);
        out.push_back(hex[b & 0x0f]);
    }
    return out;
}

const char *flag(bool on)
{
    return on ? "1" : "0";
}

UserRecord record_from_hash(std::uint64_t uid, const redisReply *hash)
{
    UserRecord user;
    user.uid = uid;
    for (std::size_t i = 0; i + 1 < reply_size(hash); i += 2) {
        std::string field = reply_string(reply_element(hash, i));
        std::string value = reply_string(reply_element(hash, i + 1));
        if (field == "username") {
            user.username = value;
        } else if (field == "password") {
            user.password = value;
        } else if (field == "is_active") {
            user.is_active = value == "1";
        } else if (field == "is_staff") {
            user.is_staff = value == "1";
        } else if (field == "is_superuser") {
            user.is_superuser = value == "1";
        } else if (field == "email") {
            user.email = value;
        } else if (field == "date_joined") {
            user.date_joined = value;
        } else if (field == "token") {
            user.token_digest = stored_digest_hex(value);
        } else if (field == "token_sealed") {
            user.token_sealed = value;
        } else if (field == "token_created") {
            user.token_created = value;
        }
    }
    return user;
}

} // namespace

Reply UserStore::run(std::string_view script,
                     const std::vector<std::string_view> &keys,
                     const std::vector<std::string_view> &args)
{
    try {
        return scripts_.run(conn_, script, keys, args);
    } catch (const ScriptTimedOut &e) {
        // Every script run here writes.
        throw WriteOutcomeUnknown(std::string(e.what()) +
                                  "; the change was made before then or not "
                                  "at all, and will not be made later");
    } catch (const ScriptRefused &e) {
        std::string_view why = e.what();
        if (why == "no such user") {
            throw NoSuchUser("no such user");
        }
        if (why == "credentials changed") {
            throw CredentialsChanged("credentials changed");
        }
        if (why == "username taken") {
            throw UsernameTaken("username taken");
        }
        if (why == "token limit") {
            throw TokenLimitReached("token limit");
        }
        throw;
    }
}

std::optional<UserRecord> UserStore::find_user(std::string_view username)
{
    Reply uid = conn_.command({"GET", keys::username_key(username)});
    if (reply_is_nil(uid.get())) {
        return std::nullopt;
    }
    std::uint64_t id = std::stoull(reply_string(uid.get()));
    Reply hash = conn_.command({"HGETALL", keys::user_key(id)});
    if (reply_size(hash.get()) == 0) {
        return std::nullopt; // deleted between the two reads
    }
    UserRecord user = record_from_hash(id, hash.get());
    read_token_expiry(user);
    return user;
}

std::optional<UserRecord> UserStore::find_user_by_uid(std::uint64_t uid)
{
    Reply hash = conn_.command({"HGETALL", keys::user_key(uid)});
    if (reply_size(hash.get()) == 0) {
        return std::nullopt;
    }
    UserRecord user = record_from_hash(uid, hash.get());
    read_token_expiry(user);
    return user;
}

std::string token_record_read_key(RedisConnection &conn,
                                  std::string_view digest_hex, bool &current)
{
    if (!current) {
        Reply schema = conn.command({"GET", keys::kSchema});
        std::string version = reply_string(schema.get());
        if (reply_is_nil(schema.get()) ||
            version == std::to_string(keys::kSchemaVersion)) {
            current = true;
        } else {
            std::string legacy = keys::legacy_token_record_key(digest_hex);
            Reply exists = conn.command({"EXISTS", legacy});
            if (reply_integer(exists.get()) == 1) {
                return legacy;
            }
        }
    }
    return keys::token_record_key(digest_hex);
}

UserStore::TokenLookup
UserStore::lookup_token(std::string_view digest_hex, std::int64_t now,
                        std::optional<std::int64_t> renewed_expiry)
{
    std::string key =
        token_record_read_key(conn_, digest_hex, records_current_);
    std::vector<std::string_view> args = {"HMGET", key};
    args.insert(args.end(), keys::kTokenRecordFields.begin(),
                keys::kTokenRecordFields.end());
    Reply reply = conn_.command(args);
    std::array<std::optional<std::string>, keys::kTokenRecordFields.size()>
        fields;
    for (std::size_t i = 0; i < fields.size() && i < reply_size(reply.get());
         i++) {
        const redisReply *field = reply_element(reply.get(), i);
        if (!reply_is_nil(field)) {
            fields[i] = reply_string(field);
        }
    }
    TokenRecordView view;
    view.uid = fields[0];
    view.user = fields[1];
    view.active = fields[2];
    view.expires = fields[3];
    // A record that never expires (0), or whose expiry is not a number
    // (malformed: judged so below), keeps its own.
    std::string later;
    std::int64_t own = 0;
    if (renewed_expiry && fields[3] &&
        std::from_chars(fields[3]->data(),
                        fields[3]->data() + fields[3]->size(), own)
                .ptr == fields[3]->data() + fields[3]->size() &&
        own != 0 && *renewed_expiry > own) {
        later = std::to_string(*renewed_expiry);
        view.expires = later;
    }
    TokenLookup lookup;
    lookup.judgement = judge_token_record(view, now);
    if (names_user(lookup.judgement.verdict)) {
        lookup.uid = std::stoull(*fields[0]);
        lookup.user = *fields[1];
    }
    return lookup;
}

namespace
{

// A record field holding Unix seconds; 0 when absent or not a number.
std::int64_t seconds_of(const redisReply *r)
{
    if (reply_is_nil(r)) {
        return 0;
    }
    std::string text = reply_string(r);
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    return ec == std::errc() && end == text.data() + text.size() ? n : 0;
}

// The expiry to show for a record whose own is `own` and whose copy in the
// directory says `directory`: renewal only ever pushes an expiry out, and
// a token that never expires (0) keeps that.
std::int64_t renewed_expiry_of(std::int64_t own, std::int64_t directory)
{
    return own != 0 && directory > own ? directory : own;
}

} // namespace

std::vector<DirectoryTokenFields>
read_directory_fields(RedisConnection &directory,
                      const std::vector<std::string> &digests_hex)
{
    // While the directory is being migrated to schema 3 (redis/SCHEMA.md,
    // Versioning) a record may still be under its hex name: read that name
    // first and then the new one, in one pipeline, as the module does, so
    // that a rename between the two reads cannot hide the record.
    Reply schema = directory.command({"GET", keys::kSchema});
    const bool legacy_too =
        !reply_is_nil(schema.get()) &&
        reply_string(schema.get()) != std::to_string(keys::kSchemaVersion);
    const std::size_t per_digest = legacy_too ? 2 : 1;
    std::vector<std::vector<std::string>> reads;
    reads.reserve(digests_hex.size() * per_digest);
    for (const std::string &digest : digests_hex) {
        if (legacy_too) {
            reads.push_back({"HMGET", keys::legacy_token_record_key(digest),
                             "uid", "expires", "last_used", "last_addr"});
        }
        reads.push_back({"HMGET", keys::token_record_key(digest), "uid",
                         "expires", "last_used", "last_addr"});
    }
    std::vector<Reply> replies = directory.pipeline(reads);
    std::vector<DirectoryTokenFields> fields(digests_hex.size());
    for (std::size_t i = 0; i < replies.size(); i++) {
        const redisReply *r = replies[i].get();
        DirectoryTokenFields &f = fields[i / per_digest];
        if (f.found || reply_size(r) < 4 || reply_is_nil(reply_element(r, 0))) {
            continue; // found under the hex name, or not in the directory
        }
        f.found = true;
        f.expires = seconds_of(reply_element(r, 1));
        f.last_used = seconds_of(reply_element(r, 2));
        if (!reply_is_nil(reply_element(r, 3))) {
            f.last_addr = reply_string(reply_element(r, 3));
        }
    }
    return fields;
}

std::optional<std::int64_t> read_renewed_expiry(RedisConnection &directory,
                                                std::string_view digest_hex)
{
    std::vector<DirectoryTokenFields> fields =
        read_directory_fields(directory, {std::string(digest_hex)});
    if (!fields[0].found || fields[0].expires == 0) {
        return std::nullopt;
    }
    return fields[0].expires;
}

std::vector<std::int64_t>
read_renewed_expiries(RedisConnection &directory,
                      const std::vector<std::string> &digests_hex)
{
    std::vector<DirectoryTokenFields> fields =
        read_directory_fields(directory, digests_hex);
    std::vector<std::int64_t> expires(fields.size());
    std::transform(
        fields.begin(), fields.end(), expires.begin(),
        [](const DirectoryTokenFields &f) { return f.found ? f.expires : 0; });
    return expires;
}

// The `expires` of the user's token record (redis/SCHEMA.md); an absent or
// unreadable one counts as never, as for the module.
void UserStore::read_token_expiry(UserRecord &user)
{
    if (user.token_digest.empty()) {
        return;
    }
    Reply expires = conn_.command(
        {"HGET",
         token_record_read_key(conn_, user.token_digest, records_current_),
         "expires"});
    if (!reply_is_nil(expires.get())) {
        try {
            user.token_expires = std::stoll(reply_string(expires.get()));
        } catch (const std::exception &) {
            user.token_expires = 0;
        }
    }
}

void UserStore::show_directory_expiry(const std::vector<UserRecord *> &users)
{
    if (!directory_fields_) {
        return;
    }
    std::vector<UserRecord *> holding;
    std::vector<std::string> digests;
    for (UserRecord *u : users) {
        if (!u->token_digest.empty() && u->token_expires != 0) {
            holding.push_back(u);
            digests.push_back(u->token_digest);
        }
    }
    if (digests.empty()) {
        return;
    }
    if (auto seen = directory_fields_(digests)) {
        for (std::size_t i = 0; i < holding.size() && i < seen->size(); i++) {
            const DirectoryTokenFields &d = (*seen)[i];
            if (d.found) {
                holding[i]->token_expires =
                    renewed_expiry_of(holding[i]->token_expires, d.expires);
            }
        }
    }
}

std::vector<UserRecord> UserStore::list_users()
{
    std::vector<UserRecord> users;
    Reply uids = conn_.command({"ZRANGE", keys::kUsers, "0", "-1"});
    for (std::size_t i = 0; i < reply_size(uids.get()); i++) {
        std::uint64_t id =
            std::stoull(reply_string(reply_element(uids.get(), i)));
        Reply hash = conn_.command({"HGETALL", keys::user_key(id)});
        if (reply_size(hash.get()) != 0) {
            users.push_back(record_from_hash(id, hash.get()));
            read_token_expiry(users.back());
        }
    }
    return users;
}

std::size_t UserStore::user_count()
{
    Reply n = conn_.command({"ZCARD", keys::kUsers});
    return static_cast<std::size_t>(reply_integer(n.get()));
}

UserStore::Candidate UserStore::new_candidate(bool sealed) const
{
    Candidate c;
    c.key = generate_token_key();
    c.digest = digest_of(c.key);
    if (sealed) {
        c.sealed = sealer_.seal(c.key, c.digest);
    }
    c.created = utc_timestamp_now();
    return c;
}

std::uint64_t UserStore::create_user(const NewUser &user, bool with_token)
{
    Candidate token;
    if (with_token) {
        token = new_candidate();
    }
    std::string date_joined = utc_timestamp_now();
    Reply uid = run("create_user",
                    {keys::username_key(user.username), keys::kNextUid,
                     keys::kUsers, keys::kSchema},
                    {user.username, user.password, flag(user.is_active),
                     flag(user.is_staff), flag(user.is_superuser), user.email,
                     date_joined, token.digest, token.sealed, token.created,
                     std::to_string(token_ttl_), renewal_});
    return static_cast<std::uint64_t>(reply_integer(uid.get()));
}

IssuedToken UserStore::issue(std::string_view username, const char *mode,
                             TokenExpiry expiry,
                             const std::vector<std::string_view> &expected,
                             const UserRecord *seen)
{
    Candidate candidate = new_candidate();
    std::string ttl = std::to_string(
        expiry.ttl == 0 && expiry.at == 0 ? token_ttl_ : expiry.ttl);
    std::string at = std::to_string(expiry.at);
    std::vector<std::string_view> args = {
        mode, candidate.digest, candidate.sealed, candidate.created, ttl,
        at,   renewal_};
    args.insert(args.end(), expected.begin(), expected.end());
    // 'get' keeps a token the edges still renew: the directory's expiry of
    // the token the user holds (the one the login saw; else read here).
    // Only a token whose copy here has passed, or is about to pass
    // (kRenewalMargin: the time a login may take between reading the user
    // and this call, and clock skew with Redis), needs the directory's.
    // `args` holds views of these two: they live as long as it.
    // cppcheck-suppress variableScope
    std::string held;
    // cppcheck-suppress variableScope
    std::string renewed;
    if (renewed_expiry_ && std::string_view(mode) == "get") {
        std::optional<UserRecord> found;
        if (seen == nullptr) {
            found = find_user(username);
            seen = found ? &*found : nullptr;
        }
        if (seen != nullptr && !seen->token_digest.empty() &&
            seen->token_expired(std::time(nullptr) + kRenewalMargin)) {
            held = seen->token_digest;
        }
        // The directory's expiry; "keep" when the directory did not
        // answer: then a token that renews is handed back, not replaced
        // (as add_token's sweep keeps it in many mode), since the edges
        // may still be renewing it.
        if (!held.empty()) {
            auto there = renewed_expiry_({held});
            if (!there) {
                renewed = "keep";
            } else if (!there->empty() && there->front() != 0) {
                renewed = std::to_string(there->front());
            }
        }
        if (!renewed.empty()) {
            if (expected.empty()) {
                args.insert(args.end(), {"", "", ""});
            }
            args.push_back(held);
            args.push_back(renewed);
        }
    }
    Reply reply = run("issue_token", {keys::username_key(username)}, args);
    std::string digest = reply_string(reply_element(reply.get(), 0));
    bool created = reply_integer(reply_element(reply.get(), 2)) == 1;
    if (created) {
        bool replaced = reply_size(reply.get()) > 3 &&
                        reply_integer(reply_element(reply.get(), 3)) == 1;
        return {candidate.key, true, replaced};
    }
    UserRecord existing;
    existing.username = std::string(username);
    existing.token_digest = digest;
    existing.token_sealed = reply_string(reply_element(reply.get(), 1));
    return {reveal_token(existing), false};
}

IssuedToken UserStore::get_or_create_token(std::string_view username,
                                           TokenExpiry expiry)
{
    return issue(username, "get", expiry);
}

IssuedToken UserStore::issue_token_for_login(std::string_view username,
                                             const UserRecord &seen,
                                             std::string_view verified_password)
{
    std::string uid = std::to_string(seen.uid);
    return issue(username, "get", {},
                 {uid, verified_password, seen.token_digest}, &seen);
}

IssuedToken UserStore::regenerate_token(std::string_view username,
                                        TokenExpiry expiry)
{
    return issue(username, "reset", expiry);
}

std::string UserStore::reveal_token(const UserRecord &user) const
{
    auto key = sealer_.unseal(user.token_sealed, user.token_digest);
    // The digest check guards against a record whose digest field was
    // edited: the key we hand out must be the one nginx will find.
    if (!key || digest_of(*key) != user.token_digest) {
        throw SealBroken("the token of user \"" + user.username +
                         "\" cannot be unsealed with this secret file");
    }
    return *key;
}

std::vector<std::string> UserStore::sweep_arguments(std::string_view username,
                                                    const UserRecord *seen)
{
    std::vector<std::string> out;
    if (!renewed_expiry_) {
        return out;
    }
    std::uint64_t uid = 0;
    if (seen != nullptr) {
        uid = seen->uid;
    } else {
        Reply r = conn_.command({"GET", keys::username_key(username)});
        if (reply_is_nil(r.get())) {
            return out; // add_token refuses: no such user
        }
        uid = std::stoull(reply_string(r.get()));
    }
    Reply set = conn_.command({"ZRANGE", keys::user_tokens_key(uid), "0",
                               std::to_string(keys::kMaxTokensPerUser - 1)});
    std::vector<std::vector<std::string>> reads;
    std::vector<std::string> digests;
    for (std::size_t i = 0; i < reply_size(set.get()); i++) {
        digests.push_back(reply_string(reply_element(set.get(), i)));
        reads.push_back(
            {"HMGET",
             token_record_read_key(conn_, digests.back(), records_current_),
             "expires", "renew"});
    }
    if (reads.empty()) {
        return out;
    }
    // Only a token that renews and whose copy here has passed, or is about
    // to by the time add_token runs, needs the directory's expiry.
    std::vector<Reply> records = conn_.pipeline(reads);
    const std::int64_t soon =
        static_cast<std::int64_t>(std::time(nullptr)) + kRenewalMargin;
    std::vector<std::string> passing;
    std::vector<std::int64_t> own;
    for (std::size_t i = 0; i < records.size(); i++) {
        const redisReply *r = records[i].get();
        if (reply_size(r) < 2) {
            continue;
        }
        std::int64_t expires = seconds_of(reply_element(r, 0));
        if (expires != 0 && expires <= soon &&
            seconds_of(reply_element(r, 1)) > 0) {
            passing.push_back(digests[i]);
            own.push_back(expires);
        }
    }
    if (passing.empty()) {
        return out;
    }
    std::optional<std::vector<std::int64_t>> there = renewed_expiry_(passing);
    if (!there) {
        out.emplace_back("keep");
        return out;
    }
    out.emplace_back("");
    for (std::size_t i = 0; i < passing.size() && i < there->size(); i++) {
        if ((*there)[i] > own[i]) {
            out.push_back(passing[i]);
            out.push_back(std::to_string((*there)[i]));
        }
    }
    return out;
}

IssuedToken UserStore::add(std::string_view username, std::string_view name,
                           const TokenPolicy &policy, TokenExpiry expiry,
                           bool replace_all,
                           const std::vector<std::string_view> &expected,
                           const UserRecord *seen)
{
    // Shown once, as knox's: no sealed copy is kept.
    Candidate candidate = new_candidate(false);
    std::string ttl = std::to_string(
        expiry.ttl == 0 && expiry.at == 0 ? token_ttl_ : expiry.ttl);
    std::string at = std::to_string(expiry.at);
    std::string limit = std::to_string(policy.limit);
    std::vector<std::string_view> args = {
        replace_all ? "replace" : "add",
        candidate.digest,
        candidate.created,
        ttl,
        at,
        name,
        limit,
        policy.on_limit == TokenLimitPolicy::drop_oldest ? "drop_oldest"
                                                         : "refuse",
        renewal_};
    args.insert(args.end(), expected.begin(), expected.end());
    // A token the edges still renew is neither swept as expired nor left
    // out of the limit's count. `args` holds views of these: they live as
    // long as it.
    std::vector<std::string> sweep;
    if (!replace_all) {
        sweep = sweep_arguments(username, seen);
    }
    if (!sweep.empty()) {
        if (expected.empty()) {
            args.insert(args.end(), {"", ""});
        }
        args.insert(args.end(), sweep.begin(), sweep.end());
    }
    Reply reply = run("add_token", {keys::username_key(username)}, args);
    auto count = [&](std::size_t i) {
        return reply_size(reply.get()) > i ? static_cast<int>(reply_integer(
                                                 reply_element(reply.get(), i)))
                                           : 0;
    };
    IssuedToken token{candidate.key, true, count(1) > 0, count(1)};
    token.swept = count(2);
    return token;
}

IssuedToken UserStore::add_token(std::string_view username,
                                 std::string_view name,
                                 const TokenPolicy &policy, TokenExpiry expiry,
                                 bool replace_all)
{
    return add(username, name, policy, expiry, replace_all, {});
}

IssuedToken UserStore::add_token_for_login(std::string_view username,
                                           std::string_view name,
                                           const TokenPolicy &policy,
                                           const UserRecord &seen,
                                           std::string_view verified_password)
{
    std::string uid = std::to_string(seen.uid);
    return add(username, name, policy, {}, false, {uid, verified_password},
               &seen);
}

std::vector<TokenInfo> UserStore::list_tokens(const UserRecord &user)
{
    std::vector<std::string> digests;
    if (!user.token_digest.empty()) {
        digests.push_back(user.token_digest);
    }
    Reply set = conn_.command({"ZRANGE", keys::user_tokens_key(user.uid), "0",
                               std::to_string(keys::kMaxTokensPerUser - 1)});
    for (std::size_t i = 0; i < reply_size(set.get()); i++) {
        digests.push_back(reply_string(reply_element(set.get(), i)));
    }
    auto number = [](const redisReply *r) -> std::int64_t {
        if (reply_is_nil(r)) {
            return 0;
        }
        try {
            return std::stoll(reply_string(r));
        } catch (const std::exception &) {
            return 0;
        }
    };
    std::vector<TokenInfo> tokens;
    for (const std::string &digest : digests) {
        Reply r = conn_.command(
            {"HMGET", token_record_read_key(conn_, digest, records_current_),
             "uid", "created", "expires", "name", "last_used", "last_addr"});
        if (reply_size(r.get()) < 6 ||
            reply_is_nil(reply_element(r.get(), 0))) {
            continue; // deleted meanwhile
        }
        auto text = [&](std::size_t i) {
            const redisReply *e = reply_element(r.get(), i);
            return reply_is_nil(e) ? std::string() : reply_string(e);
        };
        TokenInfo info;
        info.id = digest.substr(0, kTokenIdLength);
        info.digest = digest;
        info.created = text(1);
        info.expires = number(reply_element(r.get(), 2));
        info.name = text(3);
        info.last_used = number(reply_element(r.get(), 4));
        info.last_addr = text(5);
        tokens.push_back(std::move(info));
    }
    if (directory_fields_ && !tokens.empty()) {
        std::vector<std::string> shown;
        for (const TokenInfo &t : tokens) {
            // cppcheck-suppress useStlAlgorithm
            shown.push_back(t.digest);
        }
        if (auto seen = directory_fields_(shown)) {
            for (std::size_t i = 0; i < tokens.size() && i < seen->size();
                 i++) {
                const DirectoryTokenFields &d = (*seen)[i];
                TokenInfo &t = tokens[i];
                if (!d.found) {
                    continue;
                }
                t.expires = renewed_expiry_of(t.expires, d.expires);
                if (d.last_used > t.last_used) {
                    t.last_used = d.last_used;
                    t.last_addr = d.last_addr;
                }
            }
        }
    }
    return tokens;
}

std::size_t UserStore::count_tokens(const UserRecord &user)
{
    Reply n = conn_.command({"ZCARD", keys::user_tokens_key(user.uid)});
    return static_cast<std::size_t>(reply_integer(n.get())) +
           (user.token_digest.empty() ? 0 : 1);
}

bool UserStore::holds_token(const UserRecord &user, std::string_view digest_hex)
{
    if (user.token_digest == digest_hex) {
        return true;
    }
    Reply score =
        conn_.command({"ZSCORE", keys::user_tokens_key(user.uid), digest_hex});
    return !reply_is_nil(score.get());
}

bool UserStore::revoke_one(std::string_view username,
                           std::string_view digest_hex)
{
    Reply r = run("revoke_one", {keys::username_key(username)}, {digest_hex});
    return reply_integer(r.get()) == 1;
}

int UserStore::revoke_tokens(std::string_view username)
{
    Reply r = run("revoke_token", {keys::username_key(username)}, {});
    return static_cast<int>(reply_integer(r.get()));
}

bool UserStore::set_active(std::string_view username, bool active)
{
    Reply r = run("set_active", {keys::username_key(username)}, {flag(active)});
    return reply_integer(r.get()) == 1;
}

bool UserStore::set_password(std::string_view username,
                             std::string_view encoded,
                             std::string_view expected_current,
                             bool revoke_tokens)
{
    Reply r = run("set_password", {keys::username_key(username)},
                  {encoded, expected_current, revoke_tokens ? "1" : "0"});
    return reply_integer(r.get()) == 1;
}

void UserStore::delete_user(std::string_view username)
{
    run("delete_user", {keys::username_key(username), keys::kUsers}, {});
}

ImportSummary UserStore::import_batch(const std::vector<ImportedUser> &users,
                                      std::size_t begin, std::size_t end,
                                      bool check_only)
{
    nlohmann::json plan = nlohmann::json::array();
    // The sealed keys are binary: each is an argument of its own after the
    // JSON, in the users' order.
    std::vector<std::string> sealed_keys;
    for (std::size_t i = begin; i < end && i < users.size(); i++) {
        const ImportedUser &u = users[i];
        std::string digest, sealed;
        if (u.token_key) {
            digest = digest_of(*u.token_key);
            if (!check_only) {
                sealed = sealer_.seal(*u.token_key, digest);
            }
        }
        plan.push_back({{"uid", std::to_string(u.uid)},
                        {"username", u.username},
                        {"password", u.password},
                        {"is_active", flag(u.is_active)},
                        {"is_staff", flag(u.is_staff)},
                        {"is_superuser", flag(u.is_superuser)},
                        {"email", u.email},
                        {"date_joined", u.date_joined},
                        {"last_login", u.last_login},
                        {"token", digest},
                        {"token_created", u.token_created}});
        sealed_keys.push_back(std::move(sealed));
    }
    std::string payload = plan.dump();
    std::vector<std::string_view> args = {payload,
                                          check_only ? "check" : "write"};
    if (!check_only) {
        args.insert(args.end(), sealed_keys.begin(), sealed_keys.end());
    }
    // Not through run(): its timeout message speaks of one change, and the
    // caller words the outcome of an interrupted import itself.
    Reply r = scripts_.run(conn_, "import_django",
                           {keys::kUsers, keys::kNextUid, keys::kSchema}, args);
    return {reply_integer(reply_element(r.get(), 0)),
            reply_integer(reply_element(r.get(), 1)),
            reply_integer(reply_element(r.get(), 2))};
}

MigrateBatch UserStore::migrate_batch(std::uint64_t after, std::size_t limit)
{
    std::string from = std::to_string(after);
    std::string size = std::to_string(limit);
    // Not through run(): the caller words the outcome of a timeout for a
    // whole migration itself.
    Reply r = scripts_.run(conn_, "migrate", {keys::kUsers, keys::kSchema},
                           {from, size});
    return {
        reply_integer(reply_element(r.get(), 0)),
        reply_integer(reply_element(r.get(), 1)),
        static_cast<std::uint64_t>(reply_integer(reply_element(r.get(), 2)))};
}

MigrateTokensBatch UserStore::migrate_tokens_batch(RedisConnection &conn,
                                                   const std::string &cursor,
                                                   std::size_t count)
{
    Reply r = scripts_.run(conn, "migrate_tokens", {keys::kSchema},
                           {cursor, std::to_string(count)});
    return {reply_string(reply_element(r.get(), 0)),
            reply_integer(reply_element(r.get(), 1)),
            reply_integer(reply_element(r.get(), 2))};
}

} // namespace authtoken
