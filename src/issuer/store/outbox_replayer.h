// The split layout's replayer (docs/operations.md and redis/SCHEMA.md, "Two
// stores"): applies the user store's outbox to the token directory, in
// order, and acknowledges what the directory has applied; rebuilds the
// directory from the user store when it cannot continue (restarted empty,
// another directory, acknowledged writes lost beyond the outbox's
// retention). Safe to run in several processes at once: the directory's
// fence (authtoken_dir_apply applies only `applied + 1`) decides what takes
// effect, never this class.
//
// Blocking (RedisConnection): for authtokend's replayer thread and
// authtokenctl, never for nginx.
#pragma once

#include "issuer/store/redis_client.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

namespace authtoken
{

// An outbox counter of the user store (keys::kOutboxSequence: the last
// entry's number; keys::kOutboxAcked: the last one the directory applied),
// 0 when unset. The one reader of both, for the replayer, the daemon's
// directory thread and /healthz, and authtokenctl. Throws RedisError, and
// std::invalid_argument / std::out_of_range for a value that is no number.
std::uint64_t read_outbox_number(RedisConnection &user_store,
                                 std::string_view key);

class OutboxReplayer
{
  public:
    // `directory_id`: the 32 hex digits both stores hold
    // (authtoken:directory-id, authtoken:directory's `id`).
    OutboxReplayer(const ScriptLibrary &scripts, std::string directory_id);

    // directory_min_replicas: after each dir_apply, WAIT for this many of
    // the directory's replicas (at most `wait`); fewer confirming throws
    // RedisError and acknowledges nothing of that call (the next drain
    // waits again: dir_apply skips what the primary has). 0: no WAIT.
    void set_min_replicas(unsigned replicas, std::chrono::milliseconds wait);

    struct Progress {
        std::uint64_t applied = 0; // the directory's `applied` at the end
        std::uint64_t entries = 0; // outbox entries applied by this call
        std::uint64_t rebuilt = 0; // records copied by a rebuild, if any
        std::uint64_t swept = 0;   // stale directory records checked
        bool rebuild = false;      // whether this call rebuilt
        bool waited = false;       // whether it waited for another's rebuild
    };

    // Applies every entry the outbox held when it started (and any made
    // meanwhile, batch by batch), rebuilding the directory first when it
    // refuses with REBUILD. Returns once the directory has applied at least
    // the outbox number read at the start. Throws RedisError (either store
    // unreachable, a timeout: the entries stay pending and nothing is
    // acknowledged beyond what the directory answered) or ScriptRefused
    // (a misconfiguration: a user store given as the directory).
    //
    // With `rebuild_allowed` false (authtokend's request path, which must
    // answer within its reply timeout) a directory that needs a rebuild is
    // not rebuilt: NeedsRebuild is thrown instead, and the replayer thread
    // rebuilds it.
    Progress drain(RedisConnection &user_store, RedisConnection &directory,
                   bool rebuild_allowed = true);

    // drain(..., false) met a directory it cannot continue without a
    // rebuild (emptied, another id, rebuilding, lost writes).
    struct NeedsRebuild : std::runtime_error {
        using std::runtime_error::runtime_error;
    };

    // The directory's primary applied the entries, but fewer than
    // min_replicas of its replicas confirmed them (WAIT) in time: they are
    // not acknowledged, and the next drain waits again (the fence keeps the
    // primary from applying them twice). A RedisError, as before.
    struct ReplicasShort : RedisError {
        using RedisError::RedisError;
    };

    // The full rebuild alone (drain calls it when needed, and so does
    // `authtokenctl directory sync`): marks the directory rebuilding from the
    // user store's current outbox number, sweeps the token records it holds
    // against the user store, copies every user's token records in bounded
    // batches, and marks it ready. Entries numbered after the start are left to
    // drain. When another replayer's rebuild is under way (it holds the
    // directory's rebuild lease) waits for it to finish instead, and
    // answers `waited` with the directory's `applied`; overtakes it when
    // its lease lapses (it died or paused).
    Progress rebuild(RedisConnection &user_store, RedisConnection &directory);

  private:
    // dir_rebuild_begin's reply, or nothing once another replayer's
    // rebuild that refused this one (BUSY) has ended.
    std::optional<Reply> begin_or_wait(RedisConnection &directory,
                                       std::uint64_t from,
                                       const std::string &owner);

    const ScriptLibrary &scripts_;
    std::string id_;
    unsigned min_replicas_ = 0;
    std::chrono::milliseconds replica_wait_{0};
};

} // namespace authtoken
