#include "daemon/http_server.h"

#include "daemon/request_head.h"
#include "daemon/worker_pool.h"

#include "daemon/event_log.h"
#include "core/drf_messages.h"
#include "drf/json_renderer.h"

#include <microhttpd.h>

#include <fcntl.h>
#include <netdb.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

namespace authtoken
{
namespace
{

using Clock = std::chrono::steady_clock;
constexpr Clock::time_point kNever = Clock::time_point::max();
// How often the watchdog and the lingerer look at their deadlines.
constexpr std::chrono::milliseconds kTick{100};
// A lingering close reads at most this much; more is not a peer finishing
// a refused body but someone streaming at us.
constexpr std::size_t kMaxLingeringBytes = 64u << 20;

bool iequals(std::string_view a, std::string_view b)
{
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               auto lower = [](char c) {
                   return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
               };
               return lower(x) == lower(y);
           });
}

std::string numeric_host(const sockaddr *addr)
{
    socklen_t len = 0;
    if (addr == nullptr) {
        return {};
    }
    if (addr->sa_family == AF_INET) {
        len = sizeof(sockaddr_in);
    } else if (addr->sa_family == AF_INET6) {
        len = sizeof(sockaddr_in6);
    } else {
        return {}; // a unix-socket peer: client_address() treats it as local
    }
    std::array<char, NI_MAXHOST> host{};
    if (getnameinfo(addr, len, host.data(), host.size(), nullptr, 0,
                    NI_NUMERICHOST) != 0) {
        return {};
    }
    return host.data();
}

// nginx's lingering close (ngx_http_set_lingering_close): after the answer
// (MHD has shut down our sending side), read and drop what the peer still
// sends until it closes or lingering_time is up. Closing with unread data
// makes the kernel send a reset, and a peer still writing a body we refused
// (nginx proxying a 413) would see that instead of our answer. Owns a dup()
// of the connection's socket, so MHD's close() does not end the connection.
class Lingerer
{
  public:
    explicit Lingerer(std::chrono::seconds time) : time_(time)
    {
        epoll_ = epoll_create1(EPOLL_CLOEXEC);
        if (epoll_ < 0) {
            throw std::runtime_error("epoll_create1 failed");
        }
        thread_ = std::thread([this] { run(); });
    }
    ~Lingerer()
    {
        stop_ = true;
        thread_.join();
        for (auto &[fd, entry] : sockets_) {
            ::close(fd);
        }
        ::close(epoll_);
    }
    Lingerer(const Lingerer &) = delete;
    Lingerer &operator=(const Lingerer &) = delete;

    // Takes a socket whose sending side is shut down.
    void add(int fd)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.fd = fd;
        if (epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) != 0) {
            ::close(fd);
            return;
        }
        sockets_[fd] = {Clock::now() + time_, 0};
    }

  private:
    struct Entry {
        Clock::time_point end;
        std::size_t read;
    };

    void drop(int fd)
    {
        epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
        ::close(fd);
        sockets_.erase(fd);
    }

    void run()
    {
        std::array<epoll_event, 64> events;
        std::array<char, 16384> sink;
        while (!stop_) {
            int n = epoll_wait(epoll_, events.data(), events.size(),
                               static_cast<int>(kTick.count()));
            std::lock_guard<std::mutex> lock(mutex_);
            for (int i = 0; i < n; i++) {
                int fd = events[i].data.fd;
                auto it = sockets_.find(fd);
                if (it == sockets_.end()) {
                    continue;
                }
                ssize_t got = ::recv(fd, sink.data(), sink.size(), 0);
                if (got < 0 && (errno == EINTR || errno == EAGAIN)) {
                    continue;
                }
                if (got <= 0 || (it->second.read += static_cast<std::size_t>(
                                     got)) > kMaxLingeringBytes) {
                    drop(fd);
                }
            }
            Clock::time_point now = Clock::now();
            for (auto it = sockets_.begin(); it != sockets_.end();) {
                int fd = it->first;
                ++it;
                if (sockets_[fd].end <= now) {
                    drop(fd);
                }
            }
        }
    }

    const std::chrono::seconds time_;
    int epoll_ = -1;
    std::mutex mutex_;
    std::map<int, Entry> sockets_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

// Holds each new connection until its first request head is in and within
// the limits (request_head.h), peeking at the bytes without reading them,
// then hands it to MHD, which reads the same bytes. A head over the limits
// gets our JSON 414/431 and a lingering close; MHD never sees it. Without
// this, MHD 0.9.75 answers a head that outgrows its memory pool (a header
// streamed without end) with an HTML page of its own. The kernel's receive
// buffer holds what the peer sends meanwhile: nothing grows here.
class HeadGate
{
  public:
    using Pass = std::function<void(int, const sockaddr *, socklen_t)>;
    using Count = std::function<std::size_t()>;

    // `open`: the connections MHD serves now.
    HeadGate(int listen_fd, const HttpLimits &limits, Lingerer &lingerer,
             Pass pass, Count open)
        : listen_fd_(listen_fd),
          limits_(limits), head_{limits.max_line_size, limits.max_head_size,
                                 limits.max_header_fields},
          lingerer_(lingerer), pass_(std::move(pass)), open_(std::move(open)),
          buffer_(limits.max_head_size + 1)
    {
        epoll_ = epoll_create1(EPOLL_CLOEXEC);
        if (epoll_ < 0) {
            throw std::runtime_error("epoll_create1 failed");
        }
        fcntl(listen_fd_, F_SETFL, fcntl(listen_fd_, F_GETFL) | O_NONBLOCK);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = listen_fd_;
        epoll_ctl(epoll_, EPOLL_CTL_ADD, listen_fd_, &ev);
    }
    ~HeadGate()
    {
        stop();
        ::close(epoll_);
    }
    HeadGate(const HeadGate &) = delete;
    HeadGate &operator=(const HeadGate &) = delete;

    void start()
    {
        thread_ = std::thread([this] { run(); });
    }

    // Closes the listening socket and the connections still held.
    void stop()
    {
        stop_ = true;
        if (thread_.joinable()) {
            thread_.join();
        }
        if (listen_fd_ >= 0) {
            ::close(listen_fd_);
            listen_fd_ = -1;
        }
        for (auto &[fd, p] : pending_) {
            ::close(fd);
        }
        pending_.clear();
    }

  private:
    struct Pending {
        sockaddr_storage addr;
        socklen_t addr_len;
        Clock::time_point accepted;
        Clock::time_point deadline;
        std::size_t seen;
    };

    void run()
    {
        std::array<epoll_event, 64> events;
        while (!stop_) {
            int n = epoll_wait(epoll_, events.data(), events.size(),
                               static_cast<int>(kTick.count()));
            for (int i = 0; i < n; i++) {
                if (events[i].data.fd == listen_fd_) {
                    accept_all();
                } else {
                    inspect(events[i].data.fd, events[i].events);
                }
            }
            Clock::time_point now = Clock::now();
            for (auto it = pending_.begin(); it != pending_.end();) {
                int fd = it->first;
                const Pending &p = it->second;
                ++it;
                if (p.deadline <= now) {
                    log::info("connection from " + peer_of(p) +
                              ": request head not complete in time, closed");
                    forget(fd);
                    ::close(fd);
                }
            }
        }
    }

    static std::string peer_of(const Pending &p)
    {
        std::string peer =
            numeric_host(reinterpret_cast<const sockaddr *>(&p.addr));
        return peer.empty() ? "unix socket" : peer;
    }

    void accept_all()
    {
        for (;;) {
            Pending p{};
            p.addr_len = sizeof(p.addr);
            int fd = accept4(listen_fd_, reinterpret_cast<sockaddr *>(&p.addr),
                             &p.addr_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EINTR || errno == ECONNABORTED) {
                    continue;
                }
                if (errno != EAGAIN) {
                    log::error(std::string("accept: ") + std::strerror(errno));
                }
                return;
            }
            if (pending_.size() + open_() >= limits_.max_connections) {
                ::close(fd); // as MHD does over its connection limit
                continue;
            }
            if (limits_.max_head_size > 32768) {
                // The head waits in the receive buffer until it is whole.
                int size = static_cast<int>(2 * limits_.max_head_size);
                setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
            }
            p.accepted = Clock::now();
            p.deadline = p.accepted + limits_.read_timeout;
            epoll_event ev{};
            ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
            ev.data.fd = fd;
            if (epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) != 0) {
                ::close(fd);
                continue;
            }
            pending_[fd] = p;
        }
    }

    void forget(int fd)
    {
        epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
        pending_.erase(fd);
    }

    void inspect(int fd, uint32_t events)
    {
        auto it = pending_.find(fd);
        if (it == pending_.end()) {
            return;
        }
        ssize_t n = ::recv(fd, buffer_.data(), buffer_.size(), MSG_PEEK);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return;
        }
        if (n <= 0) {
            forget(fd);
            ::close(fd);
            return;
        }
        HeadScan scan = scan_request_head(
            std::string_view(buffer_.data(), static_cast<std::size_t>(n)),
            head_);
        if (scan == HeadScan::kComplete) {
            std::optional<FramingRefusal> framing = check_head_framing(
                std::string_view(buffer_.data(), static_cast<std::size_t>(n)));
            if (framing) {
                refuse(fd, framing->error->status,
                       std::string(framing->error->detail), framing->reason);
                return;
            }
            Pending p = it->second;
            forget(fd);
            pass_(fd, reinterpret_cast<const sockaddr *>(&p.addr), p.addr_len);
            return;
        }
        if (scan != HeadScan::kIncomplete) {
            refuse(fd, head_refusal_status(scan),
                   head_refusal_detail(scan, head_), std::string());
            return;
        }
        if ((events & EPOLLRDHUP) != 0) {
            forget(fd); // the peer stopped sending before its head ended
            ::close(fd);
            return;
        }
        Pending &p = it->second;
        if (static_cast<std::size_t>(n) > p.seen) {
            p.seen = static_cast<std::size_t>(n);
            p.deadline = std::min(p.accepted + limits_.request_timeout,
                                  Clock::now() + limits_.read_timeout);
        }
    }

    // `reason`, if any, is logged instead of the detail.
    void refuse(int fd, int status, const std::string &detail,
                const std::string &reason)
    {
        std::string body = render_drf_detail(detail);
        std::string answer =
            "HTTP/1.1 " + std::to_string(status) + " " +
            MHD_get_reason_phrase_for(static_cast<unsigned>(status)) +
            "\r\nContent-Type: application/json\r\nContent-Length: " +
            std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
            body;
        log::info("request head from " + peer_of(pending_[fd]) + ": " +
                  std::to_string(status) + " " +
                  (reason.empty() ? detail : reason));
        forget(fd);
        // Small enough for any socket buffer: one try.
        (void)::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
        ::shutdown(fd, SHUT_WR);
        if (limits_.lingering_time.count() > 0) {
            lingerer_.add(fd);
        } else {
            ::close(fd);
        }
    }

    int listen_fd_;
    const HttpLimits &limits_;
    const HeadLimits head_;
    Lingerer &lingerer_;
    Pass pass_;
    Count open_;
    std::vector<char> buffer_;
    int epoll_ = -1;
    std::map<int, Pending> pending_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

} // namespace

bool HttpRequest::has_header(std::string_view name) const
{
    return std::any_of(headers.begin(), headers.end(), [name](const auto &h) {
        return iequals(h.first, name);
    });
}

std::string HttpRequest::header(std::string_view name) const
{
    auto it =
        std::find_if(headers.begin(), headers.end(),
                     [name](const auto &h) { return iequals(h.first, name); });
    return it == headers.end() ? std::string() : it->second;
}

HttpResponse json_answer(int status, std::string body, CacheControl cache)
{
    HttpResponse res;
    res.status = status;
    res.body = std::move(body);
    if (cache == CacheControl::no_store) {
        res.set_header("Cache-Control", "no-store");
    }
    return res;
}

HttpResponse json_answer(const drf::DrfError &error, CacheControl cache)
{
    return json_answer(error.status, std::string(error.body), cache);
}

// One per connection (MHD's socket context), from accept to close.
struct Connection {
    int fd = -1;
    std::string peer;
    std::size_t answered = 0;
    // Guarded by Impl::mutex: when the watchdog shuts the connection down.
    Clock::time_point deadline = kNever;
    // Linger at close: an answer was given with request bytes unread.
    bool linger = false;
    // Between an answer and the next request line (keep-alive): the
    // watchdog's close is then no event worth a log line.
    std::atomic<bool> idle{false};
};

// One per request (MHD's con_cls), from its request line to its end.
struct Request {
    HttpRequest http;
    std::size_t uri_size = 0; // the request target as sent
    bool head_seen = false;   // the first access-handler call happened
    bool running = false;     // handed to a worker
    std::optional<HttpResponse> answer;
    std::function<HttpResponse(const HttpRequest &)> handler;
};

struct HttpServer::Impl {
    HttpLimits limits;
    Router router;
    MHD_Daemon *daemon = nullptr;
    WorkerPool workers;
    Lingerer lingerer;
    std::unique_ptr<HeadGate> gate;

    std::mutex mutex;
    std::set<Connection *> connections;
    // Passed to MHD by the HeadGate, not yet started (connection_notify).
    std::atomic<std::size_t> handed{0};
    // Requests between their request line and their end (for stop()).
    std::size_t in_flight = 0;
    std::condition_variable idle;
    std::atomic<bool> stopping{false};
    std::thread watchdog;

    Impl(const HttpLimits &l, Router r)
        : limits(l), router(std::move(r)), workers(l.workers),
          lingerer(l.lingering_time)
    {
    }

    void set_deadline(Connection *c, Clock::time_point when)
    {
        std::lock_guard<std::mutex> lock(mutex);
        c->deadline = when;
    }

    // The request deadline (HttpLimits::request_timeout): MHD's own
    // timeout is per read. Shutting the socket down makes MHD see the end
    // of the connection and close it in its own thread; a connection is
    // removed from `connections` before MHD closes its socket, so the
    // descriptor is never one reused by another connection.
    void watch()
    {
        std::unique_lock<std::mutex> lock(mutex);
        while (!stopping) {
            idle.wait_for(lock, kTick);
            Clock::time_point now = Clock::now();
            for (Connection *c : connections) {
                if (c->deadline <= now) {
                    c->deadline = kNever;
                    ::shutdown(c->fd, SHUT_RDWR);
                    if (c->idle) {
                        continue;
                    }
                    log::info("connection from " +
                              (c->peer.empty() ? std::string("unix socket")
                                               : c->peer) +
                              ": request not complete in time, closed");
                }
            }
        }
    }

    static Connection *connection_of(MHD_Connection *conn)
    {
        const MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        return info ? static_cast<Connection *>(info->socket_context) : nullptr;
    }

    // Queues `res` (event-loop thread, or a suspended connection's worker).
    MHD_Result send(MHD_Connection *conn, Connection *c, HttpResponse &res)
    {
        MHD_Response *response = MHD_create_response_from_buffer(
            res.body.size(), res.body.data(), MHD_RESPMEM_MUST_COPY);
        if (response == nullptr) {
            return MHD_NO;
        }
        for (const auto &[name, value] : res.headers) {
            MHD_add_response_header(response, name.c_str(), value.c_str());
        }
        if (!res.body.empty() || res.status >= 400) {
            MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                                    res.content_type.c_str());
        }
        c->answered++;
        bool close = res.close || c->answered >= limits.keep_alive_max_count ||
                     limits.keep_alive_timeout.count() == 0 || stopping;
        if (close) {
            MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION,
                                    "close");
        }
        if (res.close) {
            c->linger = true;
        }
        MHD_set_connection_option(
            conn, MHD_CONNECTION_OPTION_TIMEOUT,
            static_cast<unsigned>(limits.write_timeout.count()));
        MHD_Result ok = MHD_queue_response(
            conn, static_cast<unsigned>(res.status), response);
        MHD_destroy_response(response);
        // Until the next request line: the keep-alive wait.
        c->idle = true;
        set_deadline(
            c, Clock::now() + limits.keep_alive_timeout +
                   (close ? limits.lingering_time : std::chrono::seconds(0)));
        return ok;
    }

    // nginx's large_client_header_buffers rules, once MHD has the head: for
    // the requests after a connection's first (HeadGate checked that one).
    std::optional<HttpResponse> check_head(MHD_Connection *conn,
                                           const Request &req) const
    {
        const HttpRequest &http = req.http;
        std::size_t line = http.method.size() + 1 + req.uri_size + 9;
        const MHD_ConnectionInfo *size = MHD_get_connection_info(
            conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
        std::size_t head = size ? size->header_size : 0;
        bool long_line = std::any_of(
            http.headers.begin(), http.headers.end(), [this](const auto &h) {
                return h.first.size() + 2 + h.second.size() >
                       limits.max_line_size;
            });
        HeadScan scan = HeadScan::kComplete;
        if (line > limits.max_line_size) {
            scan = HeadScan::kRequestLineTooLong;
        } else if (long_line) {
            scan = HeadScan::kHeaderLineTooLong;
        } else if (http.headers.size() > limits.max_header_fields) {
            scan = HeadScan::kTooManyFields;
        } else if (head > limits.max_head_size) {
            scan = HeadScan::kTooLarge;
        } else {
            return std::nullopt;
        }
        HeadLimits head_limits{limits.max_line_size, limits.max_head_size,
                               limits.max_header_fields};
        int status = head_refusal_status(scan);
        std::string detail = head_refusal_detail(scan, head_limits);
        log::info("request head from " +
                  (http.peer.empty() ? std::string("unix socket") : http.peer) +
                  ": " + std::to_string(status) + " " + detail);
        HttpResponse res = json_answer(status, render_drf_detail(detail));
        res.close = true;
        return res;
    }

    // check_framing() on the requests after a connection's first (HeadGate
    // checked that one's bytes): what MHD parsed.
    static std::optional<HttpResponse>
    check_request_framing(const HttpRequest &http)
    {
        std::optional<FramingRefusal> framing = check_framing(http.headers);
        if (!framing) {
            return std::nullopt;
        }
        log::info("request head from " +
                  (http.peer.empty() ? std::string("unix socket") : http.peer) +
                  ": " + std::to_string(framing->error->status) + " " +
                  framing->reason);
        HttpResponse res = json_answer(*framing->error);
        res.close = true;
        return res;
    }

    MHD_Result first_call(MHD_Connection *conn, Connection *c, Request &req)
    {
        req.head_seen = true;
        req.http.peer = c->peer;
        MHD_get_connection_values(
            conn, MHD_HEADER_KIND,
            [](void *cls, MHD_ValueKind, const char *key,
               const char *value) -> MHD_Result {
                static_cast<HttpRequest *>(cls)->headers.emplace_back(
                    key, value ? value : "");
                return MHD_YES;
            },
            &req.http);
        std::optional<HttpResponse> refused = check_head(conn, req);
        if (!refused) {
            refused = check_request_framing(req.http);
        }
        if (refused) {
            return send(conn, c, *refused);
        }
        Dispatch dispatch = router(req.http);
        if (dispatch.answer) {
            // With a body announced, answer before reading it (MHD then
            // drops it and closes); without one, at the final call, so the
            // connection stays open.
            if (req.http.has_header("Content-Length") ||
                req.http.has_header("Transfer-Encoding")) {
                dispatch.answer->close = true;
                return send(conn, c, *dispatch.answer);
            }
            req.answer = std::move(dispatch.answer);
        }
        req.handler = std::move(dispatch.handler);
        return MHD_YES;
    }

    MHD_Result handle(MHD_Connection *conn, const char *method,
                      const char *upload_data, size_t *upload_data_size,
                      void **con_cls)
    {
        Connection *c = connection_of(conn);
        auto *req = static_cast<Request *>(*con_cls);
        if (c == nullptr || req == nullptr) {
            return MHD_NO; // cannot happen: uri_logged() made it
        }
        if (!req->head_seen) {
            req->http.method = method;
            return first_call(conn, c, *req);
        }
        if (*upload_data_size != 0) {
            std::string &body = req->http.body;
            if (!req->http.body_too_large &&
                body.size() + *upload_data_size <= limits.max_body_size) {
                body.append(upload_data, *upload_data_size);
            } else {
                // Read to its end and dropped: the answer is 413.
                req->http.body_too_large = true;
                body.clear();
            }
            *upload_data_size = 0;
            return MHD_YES;
        }
        if (req->answer) {
            return send(conn, c, *req->answer);
        }
        if (req->running || !req->handler) {
            return req->handler ? MHD_YES : MHD_NO;
        }
        // The request is in: run its handler on a worker, away from the
        // event loop, and come back here with the answer.
        req->running = true;
        set_deadline(c, kNever);
        MHD_suspend_connection(conn);
        workers.submit([conn, req] {
            try {
                req->answer = req->handler(req->http);
            } catch (const std::exception &e) {
                log::error(req->http.method + " " + req->http.path +
                           ": 500: " + e.what());
                req->answer = json_answer(drf::kServerError);
            }
            MHD_resume_connection(conn);
        });
        return MHD_YES;
    }
};

namespace
{

MHD_Result access_handler(void *cls, MHD_Connection *conn, const char *url,
                          const char *method, const char * /*version*/,
                          const char *upload_data, size_t *upload_data_size,
                          void **con_cls)
{
    auto *impl = static_cast<HttpServer::Impl *>(cls);
    auto *req = static_cast<Request *>(*con_cls);
    if (req != nullptr && !req->head_seen) {
        req->http.path = url;
    }
    return impl->handle(conn, method, upload_data, upload_data_size, con_cls);
}

// Called once a request line is in: the request starts (its deadline,
// and stop() waits for it).
void *uri_logged(void *cls, const char *uri, MHD_Connection *conn)
{
    auto *impl = static_cast<HttpServer::Impl *>(cls);
    auto *req = new Request;
    req->uri_size = std::strlen(uri);
    // MHD hands the access handler the path alone; the query string is
    // kept raw here for the handlers to parse (as Django's QueryDict).
    if (const char *q = std::strchr(uri, '?')) {
        req->http.query = q + 1;
    }
    MHD_set_connection_option(
        conn, MHD_CONNECTION_OPTION_TIMEOUT,
        static_cast<unsigned>(impl->limits.read_timeout.count()));
    if (Connection *c = HttpServer::Impl::connection_of(conn)) {
        impl->set_deadline(c, Clock::now() + impl->limits.request_timeout);
        c->idle = false;
    }
    std::lock_guard<std::mutex> lock(impl->mutex);
    impl->in_flight++;
    return req;
}

void request_completed(void *cls, MHD_Connection *, void **con_cls,
                       MHD_RequestTerminationCode)
{
    auto *impl = static_cast<HttpServer::Impl *>(cls);
    delete static_cast<Request *>(*con_cls);
    *con_cls = nullptr;
    std::lock_guard<std::mutex> lock(impl->mutex);
    impl->in_flight--;
    impl->idle.notify_all();
}

void connection_notify(void *cls, MHD_Connection *conn, void **socket_context,
                       MHD_ConnectionNotificationCode code)
{
    auto *impl = static_cast<HttpServer::Impl *>(cls);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        auto *c = new Connection;
        const MHD_ConnectionInfo *fd =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        const MHD_ConnectionInfo *addr =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        c->fd = fd ? fd->connect_fd : -1;
        c->peer = numeric_host(addr ? addr->client_addr : nullptr);
        // The first request, from the connection's start.
        c->deadline = Clock::now() + impl->limits.request_timeout;
        *socket_context = c;
        std::lock_guard<std::mutex> lock(impl->mutex);
        impl->connections.insert(c);
        // Now counted in `connections` (a connection MHD added itself,
        // none here, would find `handed` at 0).
        std::size_t handed = impl->handed.load();
        while (handed > 0 &&
               !impl->handed.compare_exchange_weak(handed, handed - 1)) {
        }
        return;
    }
    auto *c = static_cast<Connection *>(*socket_context);
    if (c == nullptr) {
        return;
    }
    {
        std::lock_guard<std::mutex> lock(impl->mutex);
        impl->connections.erase(c);
    }
    if (c->linger && impl->limits.lingering_time.count() > 0 && c->fd >= 0) {
        int fd = ::dup(c->fd);
        if (fd >= 0) {
            impl->lingerer.add(fd);
        }
    }
    delete c;
    *socket_context = nullptr;
}

// MHD's own messages (its 400/414/431 answers among them), one line each.
void mhd_log(void *, const char *fmt, va_list ap)
{
    std::array<char, 512> line{};
    std::vsnprintf(line.data(), line.size(), fmt, ap);
    std::string text(line.data());
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
        text.pop_back();
    }
    log::info("libmicrohttpd: " + text);
}

} // namespace

HttpServer::HttpServer(int listen_fd, const HttpLimits &limits, Router router)
    : impl_(std::make_unique<Impl>(limits, std::move(router)))
{
    // MHD's memory pool per connection holds the request head (read in
    // place), one record per field, and the body as it is read: room for
    // every head within the limits, so that those get our JSON answers;
    // a head that outgrows it gets MHD's own 414/431.
    std::size_t pool = limits.max_head_size + limits.max_line_size +
                       limits.max_header_fields * 64 + 32768;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                     MHD_USE_NO_LISTEN_SOCKET;
    impl_->daemon = MHD_start_daemon(
        flags, 0, nullptr, nullptr, &access_handler, impl_.get(),
        MHD_OPTION_EXTERNAL_LOGGER, &mhd_log, impl_.get(),
        // The HeadGate closes a connection over max_connections itself and
        // must never hand MHD one over this limit: MHD 0.9.75's event loop
        // then locks a mutex it already holds and never runs again.
        MHD_OPTION_CONNECTION_LIMIT, limits.max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT,
        static_cast<unsigned>(limits.read_timeout.count()),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool, MHD_OPTION_NOTIFY_COMPLETED,
        &request_completed, impl_.get(), MHD_OPTION_NOTIFY_CONNECTION,
        &connection_notify, impl_.get(), MHD_OPTION_URI_LOG_CALLBACK,
        &uri_logged, impl_.get(), MHD_OPTION_END);
    if (impl_->daemon == nullptr) {
        ::close(listen_fd);
        throw std::runtime_error("libmicrohttpd could not start");
    }
    impl_->watchdog = std::thread([impl = impl_.get()] { impl->watch(); });
    impl_->gate = std::make_unique<HeadGate>(
        listen_fd, impl_->limits, impl_->lingerer,
        [impl = impl_.get()](int fd, const sockaddr *addr, socklen_t len) {
            // Counted until MHD starts it (connection_notify), so that the
            // gate never passes more than max_connections. On failure MHD
            // closes it.
            impl->handed++;
            if (MHD_add_connection(impl->daemon, fd, addr, len) != MHD_YES) {
                impl->handed--;
            }
        },
        [impl = impl_.get()] {
            std::lock_guard<std::mutex> lock(impl->mutex);
            return impl->connections.size() + impl->handed.load();
        });
    impl_->gate->start();
}

void HttpServer::stop(std::chrono::seconds grace)
{
    if (impl_->stopping.exchange(true)) {
        return;
    }
    impl_->gate->stop();
    {
        std::unique_lock<std::mutex> lock(impl_->mutex);
        impl_->idle.wait_for(lock, grace,
                             [this] { return impl_->in_flight == 0; });
    }
    // Handlers still running resume their connections first.
    impl_->workers.join();
}

HttpServer::~HttpServer()
{
    impl_->gate.reset();
    impl_->stopping = true;
    impl_->workers.join();
    impl_->idle.notify_all();
    if (impl_->watchdog.joinable()) {
        impl_->watchdog.join();
    }
    MHD_stop_daemon(impl_->daemon);
}

} // namespace authtoken
