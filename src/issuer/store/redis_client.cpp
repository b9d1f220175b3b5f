#include "issuer/store/redis_client.h"

#include "core/redis_keys.h"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include <poll.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

namespace authtoken
{
namespace
{

timeval to_timeval(std::chrono::milliseconds ms)
{
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
    return tv;
}

std::string sha1_hex(std::string_view text)
{
    unsigned char raw[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char *>(text.data()), text.size(),
         raw);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char b : raw) {
        out.push_back(hex[b >> 4]);
        out.push_back(hex[b & 0x0f]);
    }
    return out;
}

std::string read_whole_file(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw std::runtime_error("cannot read " + path);
    }
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// What Redis 7.0 answers FCALL of a function it does not have.
bool is_function_not_found(std::string_view error)
{
    return error == "ERR Function not found";
}

// Where Redis is, as a reader knows it: no scheme, no password, no db.
std::string address_of(const RedisEndpoint &endpoint)
{
    if (!endpoint.unix_path.empty()) {
        return "unix:" + endpoint.unix_path;
    }
    bool v6 = endpoint.host.find(':') != std::string::npos;
    return (v6 ? "[" + endpoint.host + "]" : endpoint.host) + ":" +
           std::to_string(endpoint.port);
}

} // namespace

void FreeReply::operator()(redisReply *reply) const noexcept
{
    freeReplyObject(reply);
}

std::string reply_string(const redisReply *reply)
{
    if (reply == nullptr || reply->type == REDIS_REPLY_NIL) {
        return {};
    }
    if (reply->type == REDIS_REPLY_INTEGER) {
        return std::to_string(reply->integer);
    }
    return std::string(reply->str, reply->len);
}

bool reply_is_nil(const redisReply *reply)
{
    return reply == nullptr || reply->type == REDIS_REPLY_NIL;
}

long long reply_integer(const redisReply *reply)
{
    if (reply != nullptr && reply->type == REDIS_REPLY_INTEGER) {
        return reply->integer;
    }
    if (reply != nullptr && reply->type == REDIS_REPLY_STRING) {
        return std::stoll(std::string(reply->str, reply->len));
    }
    throw RedisError("unexpected reply type, wanted an integer");
}

std::size_t reply_size(const redisReply *reply)
{
    return reply != nullptr && reply->type == REDIS_REPLY_ARRAY
               ? reply->elements
               : 0;
}

const redisReply *reply_element(const redisReply *reply, std::size_t i)
{
    if (i >= reply_size(reply)) {
        throw RedisError("unexpected reply shape");
    }
    return reply->element[i];
}

void RedisConnection::FreeContext::operator()(redisContext *c) const noexcept
{
    redisFree(c);
}

namespace
{

// A Sentinel, as a plain endpoint with the Sentinels' own credentials.
RedisEndpoint sentinel_endpoint(const RedisEndpoint &endpoint,
                                const SentinelAddress &sentinel)
{
    RedisEndpoint e;
    e.host = sentinel.host;
    e.port = sentinel.port;
    e.username = endpoint.sentinel_username;
    e.password = endpoint.sentinel_password;
    return e;
}

} // namespace

RedisConnection::RedisConnection(const RedisEndpoint &endpoint,
                                 std::chrono::milliseconds timeout)
    : timeout_(timeout)
{
    if (!endpoint.via_sentinel()) {
        address_ = address_of(endpoint);
        open(endpoint);
        return;
    }
    // Sentinel client spec, step 1: ask each Sentinel in turn; one that
    // cannot be reached, times out or does not know the name is skipped.
    RedisEndpoint primary = endpoint;
    primary.sentinels.clear();
    std::string why;
    bool found = false;
    for (std::size_t i = 0; i < endpoint.sentinels.size() && !found; i++) {
        RedisEndpoint asked =
            sentinel_endpoint(endpoint, endpoint.sentinels[i]);
        try {
            RedisConnection sentinel(asked, timeout);
            Reply addr = sentinel.command(
                {"SENTINEL", "get-master-addr-by-name", endpoint.service_name});
            if (reply_size(addr.get()) != 2) {
                why += "; " + address_of(asked) + " does not know \"" +
                       endpoint.service_name + "\"";
                continue;
            }
            primary.host = reply_string(reply_element(addr.get(), 0));
            primary.port =
                static_cast<int>(reply_integer(reply_element(addr.get(), 1)));
            sentinel_used_ = i;
            found = true;
        } catch (const RedisError &e) {
            why += std::string("; ") + e.what();
        }
    }
    if (!found) {
        throw RedisError("no Sentinel named the primary of \"" +
                         endpoint.service_name + "\"" + why);
    }
    // Step 2: connect, then make sure it is a master: a Sentinel may name
    // a node that was just demoted, or not yet promoted.
    address_ = address_of(primary) + " (primary of \"" + endpoint.service_name +
               "\" by Sentinel)";
    open(primary);
    via_sentinel_ = true;
    Reply role = command({"ROLE"});
    std::string is = reply_string(reply_element(role.get(), 0));
    if (is != "master") {
        throw RedisError("Redis at " + address_ + " is a " + is +
                         ", not a master");
    }
}

void RedisConnection::open(const RedisEndpoint &endpoint)
{
    timeval tv = to_timeval(timeout_);
    ctx_.reset(
        endpoint.unix_path.empty()
            ? redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port, tv)
            : redisConnectUnixWithTimeout(endpoint.unix_path.c_str(), tv));
    if (!ctx_) {
        throw RedisError("cannot allocate a Redis context");
    }
    if (ctx_->err) {
        throw RedisError("cannot connect to Redis at " + address_ + ": " +
                         ctx_->errstr);
    }
    // The same timeout bounds every reply, so a stalled Redis costs a
    // request at most this long (then 503), never a thread forever.
    redisSetTimeout(ctx_.get(), tv);

    if (!endpoint.password.empty()) {
        if (endpoint.username.empty()) {
            command({"AUTH", endpoint.password});
        } else {
            command({"AUTH", endpoint.username, endpoint.password});
        }
    }
    if (endpoint.db != 0) {
        std::string db = std::to_string(endpoint.db);
        command({"SELECT", db});
    }
}

RedisConnection::~RedisConnection() = default;

void RedisConnection::report(RedisFailure cause) const noexcept
{
    if (observer_ != nullptr) {
        (*observer_)(cause);
    }
}

void RedisConnection::fail_io(int error)
{
    // hiredis 0.14 reports its socket timeout as an I/O error with
    // errno EAGAIN ("Resource temporarily unavailable").
    broken_ = true;
    if (ctx_->err == REDIS_ERR_IO &&
        (error == EAGAIN || error == EWOULDBLOCK ||
         std::strcmp(ctx_->errstr, std::strerror(EAGAIN)) == 0)) {
        report(RedisFailure::timeout);
        throw RedisTimeout("Redis at " + address_ +
                           " timed out: no answer within " +
                           std::to_string(timeout_.count()) + " ms");
    }
    report(RedisFailure::connection_lost);
    throw RedisConnectionLost(
        "connection to Redis at " + address_ +
        " failed: " + (ctx_->errstr[0] ? ctx_->errstr : "no reply"));
}

std::vector<Reply>
RedisConnection::pipeline(const std::vector<std::vector<std::string>> &commands)
{
    if (broken_) {
        throw RedisError("connection is broken");
    }
    for (const std::vector<std::string> &args : commands) {
        std::vector<const char *> argv;
        std::vector<std::size_t> argvlen;
        for (const std::string &a : args) {
            argv.push_back(a.data());
            argvlen.push_back(a.size());
        }
        if (redisAppendCommandArgv(ctx_.get(), static_cast<int>(argv.size()),
                                   argv.data(), argvlen.data()) != REDIS_OK) {
            broken_ = true;
            throw RedisError("cannot queue a command for Redis at " + address_);
        }
    }
    std::vector<Reply> replies;
    replies.reserve(commands.size());
    for (std::size_t i = 0; i < commands.size(); i++) {
        void *raw = nullptr;
        if (redisGetReply(ctx_.get(), &raw) != REDIS_OK || raw == nullptr) {
            fail_io(errno);
        }
        replies.emplace_back(static_cast<redisReply *>(raw));
    }
    auto error =
        std::find_if(replies.begin(), replies.end(), [](const Reply &r) {
            return r->type == REDIS_REPLY_ERROR;
        });
    if (error != replies.end()) {
        report(RedisFailure::reply_error);
        throw RedisError(std::string((*error)->str, (*error)->len));
    }
    return replies;
}

Reply RedisConnection::command(const std::vector<std::string_view> &args)
{
    if (broken_) {
        throw RedisError("connection is broken");
    }
    std::vector<const char *> argv;
    std::vector<std::size_t> argvlen;
    argv.reserve(args.size());
    argvlen.reserve(args.size());
    for (std::string_view a : args) {
        argv.push_back(a.data());
        argvlen.push_back(a.size());
    }
    Reply reply(static_cast<redisReply *>(
        redisCommandArgv(ctx_.get(), static_cast<int>(argv.size()), argv.data(),
                         argvlen.data())));
    if (!reply) {
        fail_io(errno);
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        std::string_view error(reply->str, reply->len);
        // A primary demoted to replica by a failover: nothing was written;
        // the next connection asks Sentinel where the primary is now.
        if (via_sentinel_ && error.substr(0, 9) == "READONLY ") {
            broken_ = true;
        }
        // A missing function or one of another version is answered by
        // loading the library, REFUSED: is one of our functions saying no
        // (ScriptLibrary::run): none is a failure.
        if (error.substr(0, 8) == "READONLY") {
            report(RedisFailure::readonly);
        } else if (error.substr(0, 6) == "LATE: ") {
            report(RedisFailure::timeout);
        } else if (!is_function_not_found(error) &&
                   error.substr(0, 7) != "STALE: " &&
                   error.substr(0, 9) != "REFUSED: ") {
            report(RedisFailure::reply_error);
        }
        throw RedisError(std::string(error));
    }
    return reply;
}

bool ScriptLibrary::Replaced::earlier_release_on_schema_3() const
{
    return other_before_schema_3 &&
           (schema == keys::kSchemaMigrating ||
            schema == std::to_string(keys::kSchemaVersion));
}

ScriptLibrary::ScriptLibrary(const std::string &dir, ReplacedFn on_replaced)
    : on_replaced_(std::move(on_replaced))
{
    const std::string path = dir + "/authtoken.lua";
    std::string text = read_whole_file(path);
    version_ = sha1_hex(text);
    static constexpr std::string_view kMark = "'@LIBRARY_VERSION@'";
    std::size_t at = text.find(kMark);
    if (at == std::string::npos ||
        text.find(kMark, at + kMark.size()) != std::string::npos) {
        throw std::runtime_error(path + " does not say " + std::string(kMark) +
                                 " once");
    }
    text.replace(at, kMark.size(), "'" + version_ + "'");
    source_ = std::move(text);
}

ScriptLibrary::Loaded ScriptLibrary::load(RedisConnection &conn,
                                          bool at_start) const
{
    std::string loaded;
    try {
        Reply answer = conn.command({"FCALL_RO", "authtoken_version", "0"});
        loaded = reply_string(answer.get());
        if (loaded == version_) {
            return Loaded::current;
        }
    } catch (const RedisError &e) {
        if (conn.broken() || !is_function_not_found(e.what())) {
            throw;
        }
    }
    Replaced replaced;
    replaced.other = loaded;
    replaced.at_start = at_start;
    if (!loaded.empty() && on_replaced_) {
        // Without a version every function answers STALE and runs nothing;
        // a library without the function, "function not found".
        try {
            conn.command({"FCALL", "authtoken_migrate_tokens", "0"});
        } catch (const RedisError &e) {
            if (conn.broken()) {
                throw;
            }
            replaced.other_before_schema_3 = is_function_not_found(e.what());
        }
        Reply schema = conn.command({"GET", keys::kSchema});
        if (!reply_is_nil(schema.get())) {
            replaced.schema = reply_string(schema.get());
        }
    }
    try {
        conn.command({"FUNCTION", "LOAD", "REPLACE", source_});
    } catch (const RedisError &e) {
        if (conn.broken()) {
            throw;
        }
        throw RedisError(std::string("cannot load redis/authtoken.lua: ") +
                         e.what());
    }
    if (loaded.empty()) {
        return Loaded::loaded;
    }
    if (on_replaced_) {
        on_replaced_(replaced);
    }
    return Loaded::replaced;
}

Reply ScriptLibrary::run(RedisConnection &conn, std::string_view name,
                         const std::vector<std::string_view> &keys,
                         const std::vector<std::string_view> &args) const
{
    try {
        return call(conn, name, keys, args);
    } catch (const RedisError &e) {
        // A Redis restarted without persistence, or another issuer's
        // library in place of ours: nothing ran. Load ours, call again.
        std::string_view what = e.what();
        if (conn.broken() ||
            (!is_function_not_found(what) && what.substr(0, 7) != "STALE: ")) {
            throw;
        }
    }
    load(conn, false);
    return call(conn, name, keys, args);
}

Reply ScriptLibrary::call(RedisConnection &conn, std::string_view name,
                          const std::vector<std::string_view> &keys,
                          const std::vector<std::string_view> &args) const
{
    std::string function = "authtoken_" + std::string(name);
    std::string deadline =
        std::to_string(redis_time_ms(conn) + conn.timeout().count());
    // Redis read its TIME before this moment, so the function's deadline
    // is no later than sent + timeout on this clock.
    auto sent = std::chrono::steady_clock::now();
    std::string numkeys = std::to_string(keys.size());
    std::vector<std::string_view> argv = {"FCALL", function, numkeys};
    argv.insert(argv.end(), keys.begin(), keys.end());
    argv.push_back(version_);
    argv.push_back(deadline);
    argv.insert(argv.end(), args.begin(), args.end());
    try {
        return conn.command(argv);
    } catch (const RedisTimeout &e) {
        throw ScriptTimedOut(e.what());
    } catch (const RedisConnectionLost &e) {
        // The function may have run, or may still run (a stalled Redis
        // reads it later) until its deadline: wait that out, so that "made
        // before then or not at all" is true when the caller says it.
        std::this_thread::sleep_until(sent + conn.timeout());
        throw ScriptTimedOut(std::string(e.what()) +
                             " after the change was sent; waited out its " +
                             std::to_string(conn.timeout().count()) +
                             " ms deadline");
    } catch (const RedisError &e) {
        std::string_view what = e.what();
        if (conn.broken()) {
            throw;
        }
        // Our functions refuse with the error reply "REFUSED: <reason>".
        if (what.substr(0, 9) == "REFUSED: ") {
            throw ScriptRefused(std::string(what.substr(9)));
        }
        // The function started after its deadline (the command was slow
        // to send, or Redis to read it) and changed nothing.
        if (what.substr(0, 6) == "LATE: ") {
            throw RedisTimeout("Redis at " + conn.address() +
                               " did not start the change within " +
                               std::to_string(conn.timeout().count()) +
                               " ms; nothing was changed");
        }
        throw;
    }
}

// Redis's clock, in ms: TIME answers [seconds, microseconds]. Redis read
// the time before the caller got it, and the caller then waits a whole
// timeout for the script's reply, so this time + that timeout is never
// later than the moment the caller gives up: a function that only starts
// after the caller gave up is always past its deadline.
long long ScriptLibrary::redis_time_ms(RedisConnection &conn)
{
    Reply now = conn.command({"TIME"});
    if (reply_size(now.get()) != 2) {
        throw RedisError("unexpected reply to TIME");
    }
    return reply_integer(reply_element(now.get(), 0)) * 1000 +
           reply_integer(reply_element(now.get(), 1)) / 1000;
}

RedisPool::RedisPool(RedisEndpoint endpoint, std::chrono::milliseconds timeout,
                     RedisFailureObserver on_failure)
    : endpoint_(std::move(endpoint)), timeout_(timeout),
      on_failure_(std::move(on_failure))
{
}

RedisPool::Lease::Lease(RedisPool &pool, std::unique_ptr<RedisConnection> conn,
                        std::uint64_t generation)
    : pool_(&pool), conn_(std::move(conn)), generation_(generation)
{
}

RedisPool::Lease::~Lease()
{
    if (conn_) {
        pool_->give_back(std::move(conn_), generation_);
    }
}

bool RedisConnection::unusable_while_idle() const noexcept
{
    if (broken_ || ctx_ == nullptr || ctx_->fd < 0) {
        return true;
    }
    struct pollfd pfd = {};
    pfd.fd = ctx_->fd;
    pfd.events = POLLIN;
    int ready = ::poll(&pfd, 1, 0);
    if (ready == 0) {
        return false; // nothing to read: still open, as far as we can tell
    }
    if (ready < 0) {
        return errno != EINTR;
    }
    // Readable while idle: EOF (the peer closed), an error, or data
    // nobody asked for. None of them leaves a usable connection.
    return true;
}

RedisPool::Lease RedisPool::lease()
{
    RedisEndpoint where;
    std::uint64_t generation = 0;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        while (!idle_.empty()) {
            auto conn = std::move(idle_.back());
            idle_.pop_back();
            // A connection the server has closed is dropped here, not
            // found out by the request that leases it (which would answer
            // 503 for a Redis that is up). Its siblings are as old: after a
            // restart they are closed too, and go the same way.
            if (conn->unusable_while_idle()) {
                continue;
            }
            return Lease(*this, std::move(conn), generation_);
        }
        where = endpoint_;
        generation = generation_;
    }
    // Connect outside the lock: a slow connect must not stall other leases.
    std::unique_ptr<RedisConnection> conn;
    try {
        conn = std::make_unique<RedisConnection>(where, timeout_);
    } catch (const RedisError &) {
        if (on_failure_) {
            on_failure_(RedisFailure::connect);
        }
        throw;
    }
    if (on_failure_) {
        conn->set_failure_observer(&on_failure_);
    }
    if (conn->sentinel_used() != 0) {
        // The spec: the Sentinel that answered goes first from now on.
        const SentinelAddress &answered =
            where.sentinels[conn->sentinel_used()];
        std::lock_guard<std::mutex> lock(mutex_);
        auto &list = endpoint_.sentinels;
        auto it = std::find_if(
            list.begin(), list.end(), [&](const SentinelAddress &s) {
                return s.host == answered.host && s.port == answered.port;
            });
        if (it != list.end()) {
            std::rotate(list.begin(), it, it + 1);
        }
    }
    return Lease(*this, std::move(conn), generation);
}

void RedisPool::invalidate()
{
    std::vector<std::unique_ptr<RedisConnection>> dropped;
    std::lock_guard<std::mutex> lock(mutex_);
    generation_++;
    dropped.swap(idle_);
}

void RedisPool::give_back(std::unique_ptr<RedisConnection> conn,
                          std::uint64_t generation)
{
    if (conn->broken()) {
        // A broken connection means Redis restarted, stalled or failed
        // over: the idle ones are dead too (a restart closes them all) or,
        // through Sentinel, point at a possibly former primary. Drop them,
        // or each would fail one request with 503.
        invalidate();
        return;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (generation == generation_) {
        idle_.push_back(std::move(conn));
    }
}

SentinelWatcher::SentinelWatcher(
    RedisEndpoint endpoint, std::function<void(const std::string &)> on_event)
    : endpoint_(std::move(endpoint)), on_event_(std::move(on_event))
{
    // The thread takes no signals: the process's own handling (sigwait
    // in a thread of its choosing) stays as it is.
    sigset_t all;
    sigset_t before;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &before);
    thread_ = std::thread([this] { run(); });
    pthread_sigmask(SIG_SETMASK, &before, nullptr);
}

SentinelWatcher::~SentinelWatcher()
{
    stop_ = true;
    thread_.join();
}

void SentinelWatcher::run()
{
    bool subscribed_before = false;
    while (!stop_) {
        for (const SentinelAddress &sentinel : endpoint_.sentinels) {
            if (stop_) {
                return;
            }
            listen(sentinel, subscribed_before);
        }
        // Every Sentinel is away: try again shortly.
        for (int i = 0; i < 5 && !stop_; i++) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }
}

// Subscribes on one Sentinel and reads events until it goes away or the
// watcher stops. The reads are polled, so the thread sees stop_ in time.
void SentinelWatcher::listen(const SentinelAddress &sentinel,
                             bool &subscribed_before)
{
    constexpr std::chrono::milliseconds kTimeout(1000);
    std::unique_ptr<redisContext, void (*)(redisContext *)> ctx(
        redisConnectWithTimeout(sentinel.host.c_str(), sentinel.port,
                                to_timeval(kTimeout)),
        redisFree);
    if (!ctx || ctx->err) {
        return;
    }
    redisSetTimeout(ctx.get(), to_timeval(kTimeout));
    auto ok = [](void *r) {
        Reply reply(static_cast<redisReply *>(r));
        return reply && reply->type != REDIS_REPLY_ERROR;
    };
    if (!endpoint_.sentinel_password.empty()) {
        bool authed =
            endpoint_.sentinel_username.empty()
                ? ok(redisCommand(ctx.get(), "AUTH %s",
                                  endpoint_.sentinel_password.c_str()))
                : ok(redisCommand(ctx.get(), "AUTH %s %s",
                                  endpoint_.sentinel_username.c_str(),
                                  endpoint_.sentinel_password.c_str()));
        if (!authed) {
            return;
        }
    }
    if (!ok(redisCommand(ctx.get(), "SUBSCRIBE +switch-master"))) {
        return;
    }
    if (subscribed_before) {
        on_event_("resubscribed");
    }
    subscribed_before = true;
    while (!stop_) {
        pollfd p{ctx->fd, POLLIN, 0};
        int n = poll(&p, 1, 200);
        if (n < 0 && errno != EINTR) {
            return;
        }
        if (n <= 0) {
            continue;
        }
        if (redisBufferRead(ctx.get()) != REDIS_OK) {
            return; // the Sentinel went away
        }
        void *raw = nullptr;
        while (redisGetReplyFromReader(ctx.get(), &raw) == REDIS_OK && raw) {
            Reply message(static_cast<redisReply *>(raw));
            raw = nullptr;
            // ["message", "+switch-master",
            //  "<name> <old-ip> <old-port> <new-ip> <new-port>"]
            if (reply_size(message.get()) != 3) {
                continue;
            }
            std::string text = reply_string(reply_element(message.get(), 2));
            if (text.substr(0, text.find(' ')) == endpoint_.service_name) {
                on_event_("+switch-master " + text);
            }
        }
        if (ctx->err) {
            return;
        }
    }
}

std::string server_run_id(RedisConnection &conn)
{
    try {
        Reply info = conn.command({"INFO", "server"});
        if (info->type != REDIS_REPLY_STRING) {
            return "";
        }
        std::string_view text(info->str, info->len);
        constexpr std::string_view kField = "run_id:";
        std::size_t at = text.find(kField);
        if (at == std::string_view::npos) {
            return "";
        }
        at += kField.size();
        std::size_t end = text.find_first_of("\r\n", at);
        return std::string(text.substr(at, end == std::string_view::npos
                                               ? std::string_view::npos
                                               : end - at));
    } catch (const RedisError &) {
        if (conn.broken()) {
            throw;
        }
        return ""; // an error reply: INFO refused (NOPERM, renamed)
    }
}

} // namespace authtoken
