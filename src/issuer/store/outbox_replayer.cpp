#include "issuer/store/outbox_replayer.h"

#include "core/redis_keys.h"
#include "issuer/token_key.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace authtoken
{

namespace
{

// Outbox entries per dir_apply, records per dir_copy, keys per SCAN: the
// library's own bound (OUTBOX_BATCH in redis/authtoken.lua).
constexpr std::size_t kBatch = 500;
// Fields of one entry as dir_apply takes it: seq, digest, present, uid,
// user, active, expires, renew, cap.
constexpr std::size_t kEntryFields = 9;
// Fields of one record as dir_copy takes it: digest, present, uid, user,
// active, expires, renew, cap.
constexpr std::size_t kRecordFields = 8;
// How often a replayer waiting for another's rebuild looks at the directory.
constexpr std::chrono::milliseconds kRebuildPoll{20};

std::vector<std::string_view> views(const std::vector<std::string> &args)
{
    return {args.begin(), args.end()};
}

bool starts_with(std::string_view text, std::string_view prefix)
{
    return text.substr(0, prefix.size()) == prefix;
}

} // namespace

std::uint64_t read_outbox_number(RedisConnection &user_store,
                                 std::string_view key)
{
    Reply reply = user_store.command({"GET", key});
    std::string text = reply_string(reply.get());
    return text.empty() ? 0 : std::stoull(text);
}

OutboxReplayer::OutboxReplayer(const ScriptLibrary &scripts,
                               std::string directory_id)
    : scripts_(scripts), id_(std::move(directory_id))
{
}

void OutboxReplayer::set_min_replicas(unsigned replicas,
                                      std::chrono::milliseconds wait)
{
    min_replicas_ = replicas;
    replica_wait_ = wait;
}

OutboxReplayer::Progress OutboxReplayer::drain(RedisConnection &user_store,
                                               RedisConnection &directory,
                                               bool rebuild_allowed)
{
    Progress progress;
    std::uint64_t from = read_outbox_number(user_store, keys::kOutboxAcked) + 1;
    std::uint64_t target = 0;
    bool retried = false;
    for (;;) {
        Reply read =
            scripts_.run(user_store, "outbox_read", {},
                         {std::to_string(from), std::to_string(kBatch)});
        std::uint64_t acked = reply_integer(reply_element(read.get(), 0));
        std::uint64_t seq = reply_integer(reply_element(read.get(), 1));
        std::uint64_t oldest = reply_integer(reply_element(read.get(), 2));
        if (target == 0) {
            target = seq;
        }
        std::vector<std::string> args = {id_, std::to_string(acked)};
        for (std::size_t i = 3; i < reply_size(read.get()); i++) {
            const redisReply *entry = reply_element(read.get(), i);
            for (std::size_t f = 0; f < kEntryFields; f++) {
                args.push_back(reply_string(reply_element(entry, f)));
            }
        }
        std::uint64_t applied = 0;
        // What the directory had before this call: entries up to there
        // are skipped by dir_apply (another replayer applied them, not yet
        // acknowledged) and are not this call's to count.
        std::uint64_t had = 0;
        try {
            Reply before =
                directory.command({"HGET", keys::kDirectory, "applied"});
            std::string text = reply_string(before.get());
            had = text.empty() ? 0 : std::stoull(text);
            Reply reply = scripts_.run(directory, "dir_apply", {}, views(args));
            applied = reply_integer(reply.get());
        } catch (const ScriptRefused &e) {
            std::string_view why = e.what();
            if (!starts_with(why, "REBUILD: ")) {
                throw;
            }
            // Behind what was acknowledged (a failover lost writes): the
            // outbox may still hold the entries from its `applied` on.
            Reply state = directory.command(
                {"HMGET", keys::kDirectory, "id", "applied", "state"});
            std::string id = reply_string(reply_element(state.get(), 0));
            std::string at = reply_string(reply_element(state.get(), 1));
            std::string ready = reply_string(reply_element(state.get(), 2));
            std::uint64_t behind = at.empty() ? 0 : std::stoull(at);
            if (!retried && id == id_ && ready == "ready" && oldest != 0 &&
                oldest <= behind + 1 && behind + 1 < from) {
                from = behind + 1;
                retried = true;
                continue;
            }
            if (!rebuild_allowed) {
                throw NeedsRebuild(std::string(why));
            }
            Progress rebuilt = rebuild(user_store, directory);
            progress.rebuild = progress.rebuild || rebuilt.rebuild;
            progress.waited = progress.waited || rebuilt.waited;
            progress.rebuilt += rebuilt.rebuilt;
            progress.swept += rebuilt.swept;
            from = rebuilt.applied + 1;
            retried = false;
            continue;
        }
        if (min_replicas_ > 0) {
            // The dir_apply above wrote (at least `applied` again): WAIT
            // covers it and every earlier apply of these entries.
            Reply wait =
                directory.command({"WAIT", std::to_string(min_replicas_),
                                   std::to_string(replica_wait_.count())});
            long long confirmed = reply_integer(wait.get());
            if (confirmed < static_cast<long long>(min_replicas_)) {
                throw ReplicasShort(
                    std::to_string(confirmed) + " of the token directory's " +
                    std::to_string(min_replicas_) +
                    " replicas (directory_min_replicas) confirmed it within " +
                    std::to_string(replica_wait_.count()) + " ms");
            }
        }
        if (applied >= std::max(from, had + 1)) {
            progress.entries += applied - std::max(from, had + 1) + 1;
        }
        progress.applied = applied;
        // Acknowledged only now that the directory answered that it has
        // applied them (the write order of docs/operations.md).
        scripts_.run(user_store, "outbox_ack", {}, {std::to_string(applied)});
        if (applied >= target || applied < from) {
            // Done, or the directory made no progress on what was read
            // (a gap another replayer is filling): the caller tries again.
            return progress;
        }
        from = applied + 1;
    }
}

std::optional<Reply> OutboxReplayer::begin_or_wait(RedisConnection &directory,
                                                   std::uint64_t from,
                                                   const std::string &owner)
{
    for (;;) {
        try {
            return scripts_.run(directory, "dir_rebuild_begin", {},
                                {id_, std::to_string(from), owner});
        } catch (const ScriptRefused &e) {
            if (!starts_with(e.what(), "BUSY: ")) {
                throw;
            }
        }
        // Waits while the other rebuild holds its lease, and begins again
        // (overtaking it) once the lease has lapsed.
        std::this_thread::sleep_for(kRebuildPoll);
        Reply state =
            directory.command({"HMGET", keys::kDirectory, "state", "id"});
        if (reply_string(reply_element(state.get(), 0)) != "rebuilding" ||
            reply_string(reply_element(state.get(), 1)) != id_) {
            return std::nullopt;
        }
    }
}

OutboxReplayer::Progress OutboxReplayer::rebuild(RedisConnection &user_store,
                                                 RedisConnection &directory)
{
    Progress progress;
    progress.rebuild = true;
    std::uint64_t from = read_outbox_number(user_store, keys::kOutboxSequence);
    // This rebuild's name: another that begins later takes the directory
    // over, and this one's copies and end are then refused.
    const std::string owner = generate_token_key();
    // dir_copy takes at most kBatch records a call; a snapshot batch holds
    // up to kBatch + 1001 (whole users), a SCAN reply may exceed its COUNT.
    auto copy = [&](const std::vector<std::string> &records) {
        for (std::size_t at = 0; at < records.size();
             at += kBatch * kRecordFields) {
            std::vector<std::string> args = {id_, owner};
            std::size_t end =
                std::min(records.size(), at + kBatch * kRecordFields);
            args.insert(args.end(), records.begin() + at,
                        records.begin() + end);
            scripts_.run(directory, "dir_copy", {}, views(args));
        }
    };
    std::optional<Reply> begin = begin_or_wait(directory, from, owner);
    if (!begin) {
        // Another replayer rebuilt it meanwhile: continue from its end.
        progress.rebuild = false;
        progress.waited = true;
        Reply state = directory.command({"HGET", keys::kDirectory, "applied"});
        std::string at = reply_string(state.get());
        progress.applied = at.empty() ? 0 : std::stoull(at);
        return progress;
    }
    // Every token record already there is swept, whatever the directory's
    // key count (its own keys come and go: the heartbeat only while an
    // authtokend runs, the revocation counter after a first publish), so a
    // record the user store does not know can never outlive a rebuild.
    {
        std::string cursor = "0";
        std::string pattern = std::string(keys::kTokenPrefix) + "*";
        do {
            Reply scan = directory.command({"SCAN", cursor, "MATCH", pattern,
                                            "COUNT", std::to_string(kBatch)});
            cursor = reply_string(reply_element(scan.get(), 0));
            const redisReply *found = reply_element(scan.get(), 1);
            std::vector<std::string> args;
            for (std::size_t i = 0; i < reply_size(found); i++) {
                std::string key = reply_string(reply_element(found, i));
                // Version 3's name (base64url) or, in a directory being
                // migrated, the hex one; anything else is not a record
                // any writer made, and is left alone.
                std::string digest = key.substr(keys::kTokenPrefix.size());
                Sha256Hex hex{};
                if (keys::digest_hex_of_base64url(digest, hex)) {
                    digest.assign(hex.data(), hex.size());
                } else if (digest.size() != hex.size() ||
                           digest.find_first_not_of("0123456789abcdef") !=
                               std::string::npos) {
                    continue;
                }
                // The user store's record, under whichever name it has
                // there: the hex one first, then version 3's, so that a
                // rename between the two reads (a migration) cannot hide it.
                Reply state = user_store.command(
                    {"HMGET", keys::legacy_token_record_key(digest), "uid",
                     "user", "active", "expires", "renew", "cap"});
                if (reply_is_nil(reply_element(state.get(), 0))) {
                    state = user_store.command(
                        {"HMGET", keys::token_record_key(digest), "uid", "user",
                         "active", "expires", "renew", "cap"});
                }
                bool present = !reply_is_nil(reply_element(state.get(), 0));
                args.push_back(digest);
                args.push_back(present ? "1" : "0");
                for (std::size_t f = 0; f < kRecordFields - 2; f++) {
                    args.push_back(reply_string(reply_element(state.get(), f)));
                }
                progress.swept++;
            }
            copy(args);
        } while (cursor != "0");
    }
    std::uint64_t uid = 0;
    do {
        Reply snapshot = scripts_.run(user_store, "directory_snapshot", {},
                                      {std::to_string(uid)});
        uid = reply_integer(reply_element(snapshot.get(), 0));
        std::vector<std::string> args;
        for (std::size_t i = 1; i < reply_size(snapshot.get()); i++) {
            const redisReply *entry = reply_element(snapshot.get(), i);
            for (std::size_t f = 0; f < kRecordFields; f++) {
                args.push_back(reply_string(reply_element(entry, f)));
            }
            progress.rebuilt++;
        }
        copy(args);
    } while (uid != 0);
    Reply end = scripts_.run(directory, "dir_rebuild_end", {}, {id_, owner});
    progress.applied = reply_integer(end.get());
    return progress;
}

} // namespace authtoken
