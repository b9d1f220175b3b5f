#include "daemon/deadline_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <optional>
#include <string>
#include <vector>

#include "core/drf_messages.h"
#include "daemon/event_log.h"
#include "drf/json_renderer.h"

namespace authtoken
{
namespace
{

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Waits in slices this long at most, so an idle connection notices that
// the server is stopping.
constexpr milliseconds kStopCheckInterval{100};
// A lingering close reads at most this much; more is not a peer finishing
// a refused body but someone streaming at us.
constexpr std::size_t kMaxLingeringBytes = 64u << 20;
// What one receive() asks the kernel for.
constexpr std::size_t kReadChunk = 4096;

int poll_one(int sock, short events, milliseconds wait)
{
    pollfd p{sock, events, 0};
    int timeout = static_cast<int>(std::max<long long>(0, wait.count()));
    int n;
    do {
        n = ::poll(&p, 1, timeout);
    } while (n < 0 && errno == EINTR);
    return n;
}

milliseconds until(Clock::time_point t)
{
    return std::chrono::duration_cast<milliseconds>(t - Clock::now());
}

// What read_head() found; everything but kComplete and kIncomplete is
// refused before httplib sees the request.
enum class Head {
    kComplete,   // the empty line that ends the head is in the buffer
    kIncomplete, // the peer closed or timed out first: httplib decides
    kRequestLineTooLong,
    kHeaderLineTooLong,
    kTooLarge,
    kTooManyFields,
};

// httplib's own SocketStream, plus a deadline for the request being read
// and a bounded read of the request head. One stream lives as long as the
// connection, so bytes of a pipelined next request that were read into the
// buffer are not lost.
class ConnectionStream final : public httplib::Stream
{
  public:
    ConnectionStream(socket_t sock, const ConnectionLimits &limits)
        : sock_(sock), limits_(limits)
    {
    }

    // Waits up to `idle` for the first byte of a request; false when none
    // came, the peer closed, or the server is stopping.
    bool wait_for_request(milliseconds idle,
                          const std::atomic<socket_t> &listener)
    {
        if (buffered() > 0) {
            return true;
        }
        Clock::time_point end = Clock::now() + idle;
        for (;;) {
            if (listener == INVALID_SOCKET) {
                return false;
            }
            milliseconds left = until(end);
            if (left.count() <= 0) {
                return false;
            }
            int n = poll_one(sock_, POLLIN, std::min(left, kStopCheckInterval));
            if (n != 0) {
                return n > 0;
            }
        }
    }

    void start_request()
    {
        deadline_ = Clock::now() + limits_.request_timeout;
    }
    void end_request()
    {
        deadline_.reset();
    }

    bool is_readable() const override
    {
        if (buffered() > 0) {
            return true;
        }
        milliseconds wait = limits_.read_timeout;
        if (deadline_) {
            wait = std::min(wait, until(*deadline_));
            if (wait.count() <= 0) {
                return false;
            }
        }
        return poll_one(sock_, POLLIN, wait) > 0;
    }

    bool is_writable() const override
    {
        return poll_one(sock_, POLLOUT, limits_.write_timeout) > 0;
    }

    // Reads until the buffer holds the whole request head (through its
    // empty line), checking the limits as bytes arrive, so at most
    // max_head_size + kReadChunk bytes are ever held for a head.
    Head read_head()
    {
        if (offset_ > 0) {
            std::copy(buffer_.begin() + static_cast<std::ptrdiff_t>(offset_),
                      buffer_.begin() + static_cast<std::ptrdiff_t>(filled_),
                      buffer_.begin());
            filled_ -= offset_;
            offset_ = 0;
        }
        std::size_t scanned = 0;
        std::size_t line_start = 0;
        std::size_t fields = 0;
        bool request_line = true;
        for (;;) {
            for (; scanned < filled_; scanned++) {
                if (scanned >= limits_.max_head_size) {
                    return Head::kTooLarge;
                }
                if (buffer_[scanned] != '\n') {
                    continue;
                }
                std::size_t length = scanned - line_start;
                if (length > 0 && buffer_[scanned - 1] == '\r') {
                    length--;
                }
                line_start = scanned + 1;
                if (request_line) {
                    if (length > limits_.max_line_size) {
                        return Head::kRequestLineTooLong;
                    }
                    request_line = false;
                    if (length == 0) {
                        return Head::kComplete; // httplib refuses it
                    }
                } else if (length == 0) {
                    return Head::kComplete;
                } else if (length > limits_.max_line_size) {
                    return Head::kHeaderLineTooLong;
                } else if (++fields > limits_.max_header_fields) {
                    return Head::kTooManyFields;
                }
            }
            // A line still without its newline (+1 for a pending '\r').
            if (filled_ - line_start > limits_.max_line_size + 1) {
                return request_line ? Head::kRequestLineTooLong
                                    : Head::kHeaderLineTooLong;
            }
            if (!is_readable()) {
                return Head::kIncomplete;
            }
            buffer_.resize(std::max(buffer_.size(), filled_ + kReadChunk));
            ssize_t n =
                receive(buffer_.data() + filled_, buffer_.size() - filled_);
            if (n <= 0) {
                return Head::kIncomplete;
            }
            filled_ += static_cast<std::size_t>(n);
        }
    }

    ssize_t read(char *ptr, size_t size) override
    {
        if (buffered() > 0) {
            std::size_t n = std::min(size, buffered());
            std::copy_n(buffer_.data() + offset_, n, ptr);
            offset_ += n;
            return static_cast<ssize_t>(n);
        }
        if (!is_readable()) {
            return -1;
        }
        offset_ = 0;
        filled_ = 0;
        if (size >= kReadChunk) {
            return receive(ptr, size);
        }
        ssize_t n = receive(buffer_.data(), buffer_.size());
        if (n <= 0) {
            return n;
        }
        filled_ = static_cast<std::size_t>(n);
        return read(ptr, size);
    }

    ssize_t write(const char *ptr, size_t size) override
    {
        if (!is_writable()) {
            return -1;
        }
        ssize_t n;
        do {
            n = ::send(sock_, ptr, size, MSG_NOSIGNAL);
        } while (n < 0 && errno == EINTR);
        return n;
    }

    void get_remote_ip_and_port(std::string &ip, int &port) const override
    {
        sockaddr_storage addr{};
        socklen_t len = sizeof(addr);
        if (getpeername(sock_, reinterpret_cast<sockaddr *>(&addr), &len) ==
            0) {
            describe(addr, len, ip, port);
        }
    }

    void get_local_ip_and_port(std::string &ip, int &port) const override
    {
        sockaddr_storage addr{};
        socklen_t len = sizeof(addr);
        if (getsockname(sock_, reinterpret_cast<sockaddr *>(&addr), &len) ==
            0) {
            describe(addr, len, ip, port);
        }
    }

    socket_t socket() const override
    {
        return sock_;
    }

  private:
    std::size_t buffered() const
    {
        return filled_ - offset_;
    }

    ssize_t receive(char *ptr, std::size_t size)
    {
        ssize_t n;
        do {
            n = ::recv(sock_, ptr, size, 0);
        } while (n < 0 && errno == EINTR);
        return n;
    }

    // As httplib: numeric host and port for IP; for a unix socket the
    // address stays empty (client_address() treats that peer as local).
    static void describe(const sockaddr_storage &addr, socklen_t len,
                         std::string &ip, int &port)
    {
        if (addr.ss_family == AF_INET) {
            port = ntohs(reinterpret_cast<const sockaddr_in &>(addr).sin_port);
        } else if (addr.ss_family == AF_INET6) {
            port =
                ntohs(reinterpret_cast<const sockaddr_in6 &>(addr).sin6_port);
        } else {
            return;
        }
        std::array<char, NI_MAXHOST> host{};
        if (getnameinfo(reinterpret_cast<const sockaddr *>(&addr), len,
                        host.data(), host.size(), nullptr, 0,
                        NI_NUMERICHOST) == 0) {
            ip = host.data();
        }
    }

    socket_t sock_;
    const ConnectionLimits &limits_;
    std::optional<Clock::time_point> deadline_;
    // Holds a request head while it is checked (read_head()), otherwise
    // one receive()'s worth.
    std::vector<char> buffer_ = std::vector<char>(kReadChunk);
    std::size_t offset_ = 0;
    std::size_t filled_ = 0;
};

bool announces_body(const httplib::Request &req)
{
    return req.has_header("Transfer-Encoding") ||
           (req.has_header("Content-Length") &&
            req.get_header_value("Content-Length") != "0");
}

// nginx's lingering close: stop sending (the peer sees the end of our
// answer), then read and drop what the peer is still sending until it
// closes or the time is up. Closing with unread data would make the kernel
// answer with a reset, and a peer still writing a body we refused (nginx
// proxying a 413) would see EPIPE instead of our answer.
void linger_and_close(socket_t sock, milliseconds lingering_time)
{
    ::shutdown(sock, SHUT_WR);
    Clock::time_point end = Clock::now() + lingering_time;
    std::array<char, 16384> sink;
    std::size_t total = 0;
    while (total < kMaxLingeringBytes) {
        milliseconds left = until(end);
        if (left.count() <= 0 || poll_one(sock, POLLIN, left) <= 0) {
            break;
        }
        ssize_t n = ::recv(sock, sink.data(), sink.size(), 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        total += static_cast<std::size_t>(n);
    }
    ::close(sock);
}

// The answer to a refused head, written without httplib (which never
// parsed the request): JSON as every other error, and a close.
void refuse_head(ConnectionStream &stream, Head head,
                 const ConnectionLimits &limits)
{
    int status = 431;
    const char *reason = "Request Header Fields Too Large";
    std::string detail;
    switch (head) {
    case Head::kRequestLineTooLong:
        status = 414;
        reason = "URI Too Long";
        detail = drf::request_line_longer_than_detail(limits.max_line_size);
        break;
    case Head::kHeaderLineTooLong:
        detail = drf::header_line_longer_than_detail(limits.max_line_size);
        break;
    case Head::kTooManyFields:
        detail = drf::more_header_fields_than_detail(limits.max_header_fields);
        break;
    default:
        detail = drf::headers_larger_than_detail(limits.max_head_size);
        break;
    }
    std::string body = render_drf_detail(detail);
    std::string answer = "HTTP/1.1 " + std::to_string(status) + " " + reason +
                         "\r\nContent-Type: application/json\r\n"
                         "Content-Length: " +
                         std::to_string(body.size()) +
                         "\r\nConnection: close\r\n\r\n" + body;
    std::size_t sent = 0;
    while (sent < answer.size()) {
        ssize_t n = stream.write(answer.data() + sent, answer.size() - sent);
        if (n <= 0) {
            break;
        }
        sent += static_cast<std::size_t>(n);
    }
    std::string ip;
    int port = 0;
    stream.get_remote_ip_and_port(ip, port);
    log::info("request head from " + (ip.empty() ? "unix socket" : ip) + ": " +
              std::to_string(status) + " " + detail);
}

} // namespace

bool DeadlineServer::process_and_close_socket(socket_t sock)
{
    ConnectionStream stream(sock, limits_);
    bool ok = false;
    bool had_body = false;
    for (std::size_t left = limits_.keep_alive_max_count; left > 0; left--) {
        // A new connection must start talking within read_timeout; a
        // kept-alive one may stay idle for keep_alive_timeout.
        bool first = left == limits_.keep_alive_max_count;
        had_body = false;
        if (!stream.wait_for_request(first ? limits_.read_timeout
                                           : limits_.keep_alive_timeout,
                                     svr_sock_)) {
            break;
        }
        stream.start_request();
        Head head = stream.read_head();
        if (head != Head::kComplete && head != Head::kIncomplete) {
            refuse_head(stream, head, limits_);
            // The peer is likely still sending: linger so it reads the
            // answer rather than a reset.
            had_body = true;
            ok = false;
            break;
        }
        bool connection_closed = false;
        ok = process_request(stream, left == 1, connection_closed,
                             [&had_body](httplib::Request &req) {
                                 had_body = announces_body(req);
                             });
        stream.end_request();
        if (!ok || connection_closed) {
            break;
        }
    }
    if (had_body && limits_.lingering_time.count() > 0) {
        linger_and_close(sock, limits_.lingering_time);
    } else {
        ::shutdown(sock, SHUT_RDWR);
        ::close(sock);
    }
    return ok;
}

} // namespace authtoken
