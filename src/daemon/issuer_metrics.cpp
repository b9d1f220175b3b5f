#include "daemon/issuer_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <vector>

namespace authtoken
{
namespace
{

constexpr std::array<const char *,
                     static_cast<std::size_t>(LoginOutcome::count_)>
    kOutcomeNames = {"ok",           "wrong_credentials", "inactive",
                     "throttled",    "bad_request",       "unavailable",
                     "server_error", "token_limit",       "withheld"};

constexpr std::array<const char *,
                     static_cast<std::size_t>(RedisFailure::count_)>
    kFailureNames = {"connect", "timeout", "connection_lost", "readonly",
                     "reply_error"};

std::size_t index_of(LoginOutcome o)
{
    return static_cast<std::size_t>(o);
}

std::size_t index_of(RedisFailure f)
{
    return static_cast<std::size_t>(f);
}

// A sample value: whole numbers as integers, others in the shortest form
// that reads back the same ("0.001", "1795968453.14").
std::string number(double v)
{
    char buf[32];
    // Whole numbers (byte counts, fd limits) in full: "20000", not "2e+04".
    if (v == static_cast<double>(static_cast<long long>(v)) && v < 1e15 &&
        v > -1e15) {
        std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
        return buf;
    }
    for (int precision = 1; precision <= 17; precision++) {
        std::snprintf(buf, sizeof buf, "%.*g", precision, v);
        if (std::strtod(buf, nullptr) == v) {
            break;
        }
    }
    return buf;
}

void family(std::string &out, const char *name, const char *type,
            const char *help)
{
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}

void sample(std::string &out, const std::string &name, const std::string &value)
{
    out += name;
    out += ' ';
    out += value;
    out += '\n';
}

// /proc/self/stat, proc(5): the fields after the command name's closing
// parenthesis, which starts field 3 (state). Empty when unreadable.
std::vector<std::string> proc_self_stat()
{
    std::ifstream in("/proc/self/stat");
    std::string text((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
    std::size_t paren = text.rfind(')');
    std::vector<std::string> fields;
    if (paren == std::string::npos) {
        return fields;
    }
    std::istringstream rest(text.substr(paren + 1));
    for (std::string f; rest >> f;) {
        fields.push_back(f);
    }
    return fields;
}

// Field number n of proc(5) (1-based, as the man page counts).
double stat_field(const std::vector<std::string> &fields, std::size_t n)
{
    if (n < 3 || n - 3 >= fields.size()) {
        return 0;
    }
    return std::strtod(fields[n - 3].c_str(), nullptr);
}

// The boot time, "btime" of /proc/stat, in seconds since the epoch.
double boot_time()
{
    std::ifstream in("/proc/stat");
    for (std::string line; std::getline(in, line);) {
        if (line.compare(0, 6, "btime ") == 0) {
            return std::strtod(line.c_str() + 6, nullptr);
        }
    }
    return 0;
}

double clock_ticks()
{
    long ticks = sysconf(_SC_CLK_TCK);
    return ticks > 0 ? static_cast<double>(ticks) : 100.0;
}

double open_fds()
{
    std::unique_ptr<DIR, int (*)(DIR *)> d(opendir("/proc/self/fd"), closedir);
    if (!d) {
        return 0;
    }
    double n = 0;
    while (dirent *entry = readdir(d.get())) {
        if (entry->d_name[0] != '.') {
            n++;
        }
    }
    // The directory stream's own descriptor is open while it is read.
    return n > 0 ? n - 1 : 0;
}

void render_process(std::string &out, double start_time)
{
    std::vector<std::string> stat = proc_self_stat();
    double ticks = clock_ticks();
    family(out, "process_cpu_seconds_total", "counter",
           "Total user and system CPU time spent in seconds.");
    sample(out, "process_cpu_seconds_total",
           number((stat_field(stat, 14) + stat_field(stat, 15)) / ticks));
    family(out, "process_virtual_memory_bytes", "gauge",
           "Virtual memory size in bytes.");
    sample(out, "process_virtual_memory_bytes", number(stat_field(stat, 23)));
    family(out, "process_resident_memory_bytes", "gauge",
           "Resident memory size in bytes.");
    sample(out, "process_resident_memory_bytes",
           number(stat_field(stat, 24) *
                  static_cast<double>(sysconf(_SC_PAGESIZE))));
    family(out, "process_start_time_seconds", "gauge",
           "Start time of the process since unix epoch in seconds.");
    sample(out, "process_start_time_seconds", number(start_time));
    family(out, "process_open_fds", "gauge",
           "Number of open file descriptors.");
    sample(out, "process_open_fds", number(open_fds()));
    rlimit nofile{};
    double max_fds = 0;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 &&
        nofile.rlim_cur != RLIM_INFINITY) {
        max_fds = static_cast<double>(nofile.rlim_cur);
    }
    family(out, "process_max_fds", "gauge",
           "Maximum number of open file descriptors.");
    sample(out, "process_max_fds", number(max_fds));
}

} // namespace

const char *const IssuerMetrics::kContentType =
    "text/plain; version=0.0.4; charset=utf-8";

IssuerMetrics::IssuerMetrics()
{
    // Field 22, starttime: clock ticks after boot.
    start_time_seconds_ =
        boot_time() + stat_field(proc_self_stat(), 22) / clock_ticks();
}

void IssuerMetrics::login(LoginOutcome outcome) noexcept
{
    logins_[index_of(outcome)].fetch_add(1, std::memory_order_relaxed);
}

void IssuerMetrics::redis_failure(RedisFailure cause) noexcept
{
    redis_failures_[index_of(cause)].fetch_add(1, std::memory_order_relaxed);
}

void IssuerMetrics::token_created() noexcept
{
    tokens_created_.fetch_add(1, std::memory_order_relaxed);
}

void IssuerMetrics::token_revoked() noexcept
{
    tokens_revoked_.fetch_add(1, std::memory_order_relaxed);
}

void IssuerMetrics::directory_enabled() noexcept
{
    directory_.store(true, std::memory_order_relaxed);
}

void IssuerMetrics::directory_drained(std::uint64_t entries,
                                      std::uint64_t applied,
                                      bool rebuilt) noexcept
{
    directory_entries_.fetch_add(entries, std::memory_order_relaxed);
    directory_applied_.store(applied, std::memory_order_relaxed);
    if (rebuilt) {
        directory_rebuilds_.fetch_add(1, std::memory_order_relaxed);
    }
}

void IssuerMetrics::directory_failed() noexcept
{
    directory_failures_.fetch_add(1, std::memory_order_relaxed);
}

void IssuerMetrics::directory_pending(std::uint64_t pending) noexcept
{
    directory_pending_.store(pending, std::memory_order_relaxed);
}

void IssuerMetrics::observe_hash(std::chrono::nanoseconds duration) noexcept
{
    double seconds = std::chrono::duration<double>(duration).count();
    std::size_t i = 0;
    while (i < kHashBuckets.size() && seconds > kHashBuckets[i]) {
        i++;
    }
    hash_buckets_[i].fetch_add(1, std::memory_order_relaxed);
    hash_sum_ns_.fetch_add(static_cast<std::uint64_t>(duration.count()),
                           std::memory_order_relaxed);
}

IssuerMetrics::HashWait::HashWait(IssuerMetrics &metrics) noexcept
    : metrics_(metrics)
{
    metrics_.hashes_waiting_.fetch_add(1, std::memory_order_relaxed);
}

IssuerMetrics::HashWait::~HashWait()
{
    metrics_.hashes_waiting_.fetch_sub(1, std::memory_order_relaxed);
}

IssuerMetrics::HashRun::HashRun(IssuerMetrics &metrics) noexcept
    : metrics_(metrics), start_(std::chrono::steady_clock::now())
{
    metrics_.hashes_running_.fetch_add(1, std::memory_order_relaxed);
}

IssuerMetrics::HashRun::~HashRun()
{
    metrics_.observe_hash(std::chrono::steady_clock::now() - start_);
    metrics_.hashes_running_.fetch_sub(1, std::memory_order_relaxed);
}

std::string IssuerMetrics::render() const
{
    auto load = [](const Counter &c) {
        return std::to_string(c.load(std::memory_order_relaxed));
    };
    std::string out;
    out.reserve(4096);

    family(out, "authtokend_logins_total", "counter",
           "POST /api-token-auth/ answers by outcome.");
    for (std::size_t i = 0; i < logins_.size(); i++) {
        sample(out,
               std::string("authtokend_logins_total{outcome=\"") +
                   kOutcomeNames[i] + "\"}",
               load(logins_[i]));
    }

    family(out, "authtokend_password_hash_duration_seconds", "histogram",
           "Time of each password hash (check, dummy check, new hash), "
           "without the wait for a hashing slot.");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < hash_buckets_.size(); i++) {
        cumulative += hash_buckets_[i].load(std::memory_order_relaxed);
        std::string le =
            i < kHashBuckets.size() ? number(kHashBuckets[i]) : "+Inf";
        sample(out,
               "authtokend_password_hash_duration_seconds_bucket{le=\"" + le +
                   "\"}",
               std::to_string(cumulative));
    }
    sample(out, "authtokend_password_hash_duration_seconds_sum",
           number(static_cast<double>(
                      hash_sum_ns_.load(std::memory_order_relaxed)) /
                  1e9));
    sample(out, "authtokend_password_hash_duration_seconds_count",
           std::to_string(cumulative));

    family(out, "authtokend_password_hashes_waiting", "gauge",
           "Password hashes waiting for a hashing slot (the threads "
           "setting).");
    sample(out, "authtokend_password_hashes_waiting",
           std::to_string(hashes_waiting_.load(std::memory_order_relaxed)));
    family(out, "authtokend_password_hashes_in_flight", "gauge",
           "Password hashes running now.");
    sample(out, "authtokend_password_hashes_in_flight",
           std::to_string(hashes_running_.load(std::memory_order_relaxed)));

    family(out, "authtokend_redis_errors_total", "counter",
           "Failed Redis connects and commands by cause.");
    for (std::size_t i = 0; i < redis_failures_.size(); i++) {
        sample(out,
               std::string("authtokend_redis_errors_total{cause=\"") +
                   kFailureNames[i] + "\"}",
               load(redis_failures_[i]));
    }

    family(out, "authtokend_tokens_created_total", "counter",
           "Tokens created by the daemon's logins (not by authtokenctl).");
    sample(out, "authtokend_tokens_created_total", load(tokens_created_));
    family(out, "authtokend_tokens_revoked_total", "counter",
           "Tokens revoked by the daemon: replaced at a login because they "
           "could not be handed back (not authtokenctl's revocations).");
    sample(out, "authtokend_tokens_revoked_total", load(tokens_revoked_));

    if (directory_.load(std::memory_order_relaxed)) {
        family(out, "authtokend_directory_pending", "gauge",
               "Outbox entries recorded in the user store and not yet "
               "applied to the token directory, as the replayer thread last "
               "saw them.");
        sample(out, "authtokend_directory_pending", load(directory_pending_));
        family(out, "authtokend_directory_applied", "gauge",
               "The last outbox number the token directory has applied.");
        sample(out, "authtokend_directory_applied", load(directory_applied_));
        family(out, "authtokend_directory_entries_applied_total", "counter",
               "Outbox entries this daemon applied to the token directory.");
        sample(out, "authtokend_directory_entries_applied_total",
               load(directory_entries_));
        family(out, "authtokend_directory_rebuilds_total", "counter",
               "Rebuilds of the token directory from the user store.");
        sample(out, "authtokend_directory_rebuilds_total",
               load(directory_rebuilds_));
        family(out, "authtokend_directory_drain_failures_total", "counter",
               "Drains of the outbox the token directory did not take "
               "(unreachable, too slow, or in need of a rebuild).");
        sample(out, "authtokend_directory_drain_failures_total",
               load(directory_failures_));
    }

    render_process(out, start_time_seconds_);
    return out;
}

} // namespace authtoken
