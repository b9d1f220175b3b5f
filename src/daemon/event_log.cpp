#include "daemon/event_log.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <string>

namespace authtoken::log
{
namespace
{

std::mutex &stderr_mutex()
{
    static std::mutex m;
    return m;
}

// "2026-11-27T20:26:24Z": UTC, second resolution, sortable.
std::string utc_now()
{
    std::time_t now =
        std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

void write_line(std::string_view level, std::string_view line)
{
    std::string out = utc_now();
    out.append(" [").append(level).append("] ").append(line);
    // A newline inside a message would forge a second log line.
    for (char &c : out) {
        if (c == '\n' || c == '\r') {
            c = ' ';
        }
    }
    out.push_back('\n');
    std::lock_guard<std::mutex> lock(stderr_mutex());
    std::fwrite(out.data(), 1, out.size(), stderr);
    std::fflush(stderr);
}

} // namespace

void info(std::string_view line)
{
    write_line("info", line);
}

void warn(std::string_view line)
{
    write_line("warn", line);
}

void error(std::string_view line)
{
    write_line("error", line);
}

std::string quoted_username(std::string_view username)
{
    std::string out;
    for (char c : username.substr(0, 64)) {
        unsigned char u = static_cast<unsigned char>(c);
        out.push_back(u < 0x20 || u == 0x7f || c == '"' ? '?' : c);
    }
    return '"' + out + '"';
}

} // namespace authtoken::log
