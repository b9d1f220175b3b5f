// authtokend's HTTP server on GNU libmicrohttpd (Debian 12: 0.9.75).
//
// One event-loop thread (MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL)
// reads every connection's request head and body; slow clients cost a
// connection slot and a memory pool, never a thread. A request whose head
// and body have arrived is suspended (MHD_suspend_connection) and its
// handler runs on a worker thread, where it may block on Redis, a throttle
// delay or a password-hashing slot (concurrency_limit.h); the worker
// resumes the connection with the answer. MHD's own model covers
// connection limits, the per-read (inactivity) timeout, keep-alive and
// chunked bodies; this file adds what MHD 0.9.75 has not:
//  - a whole-request deadline (request_timeout): a watchdog thread shuts
//    down a connection whose request is not in by then (MHD's timeout is
//    reset by every byte, so one byte every few seconds would hold it);
//  - nginx's large_client_header_buffers rules with JSON answers (414 and
//    431, see HttpLimits) for heads that fit MHD's memory pool;
//  - nginx's lingering close after an answer given with a body unread.
// What MHD answers by itself is in docs/authtokend.md ("Limits").
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace authtoken
{

namespace drf
{
struct DrfError;
}

struct HttpLimits {
    // MHD's inactivity timeout while a request is read (each read, and a
    // new connection's wait for its first byte), then while its answer is
    // written.
    std::chrono::seconds read_timeout{5};
    std::chrono::seconds write_timeout{5};
    // The whole request (request line, headers and body) must have arrived
    // within this, counted from the connection's start or from the end of
    // the previous answer on it (plus keep_alive_timeout).
    std::chrono::seconds request_timeout{10};
    // How long an idle keep-alive connection waits for its next request.
    std::chrono::seconds keep_alive_timeout{2};
    std::size_t keep_alive_max_count = 5;
    // After an answer given with a request body unread (413, 405, a refused
    // head): read and discard what the peer still sends for at most this
    // long, so that it reads the answer instead of a reset (0: plain close).
    std::chrono::seconds lingering_time{5};
    // nginx's `large_client_header_buffers 4 8k`: a request line longer
    // than max_line_size gets 414; a header line longer than it, a head
    // over max_head_size bytes or more than max_header_fields fields get
    // 431. The answer is JSON and the connection is closed.
    std::size_t max_line_size = 8192;
    std::size_t max_head_size = 32768;
    std::size_t max_header_fields = 100;
    // Bodies over this get 413 (announced: before reading; chunked: once
    // read to their end, the excess dropped).
    std::size_t max_body_size = 16384;
    unsigned max_connections = 1024;
    // Handlers running at once (each may wait on Redis or a throttle
    // delay); more requests queue for a worker.
    unsigned workers = 128;
};

// A request whose head has arrived. Header names compare
// case-insensitively; values are as sent.
struct HttpRequest {
    std::string method;
    std::string path;  // without the query string
    std::string query; // the raw query string after '?', "" when none
    std::string peer;  // numeric IP; empty for a unix-socket peer
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    // The body was over HttpLimits::max_body_size (read and dropped).
    bool body_too_large = false;

    bool has_header(std::string_view name) const;
    // The first field of that name, "" when there is none.
    std::string header(std::string_view name) const;
};

struct HttpResponse {
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    std::string content_type = "application/json";
    // Close the connection after this answer (a body left unread).
    bool close = false;
    // Set by a handler whose answer hands out something that exists only
    // through it (a tokens_per_user = many login's new key): called on the
    // worker thread, instead of sending this answer, when the answer is
    // withheld (the token directory did not take the write: a 503, see
    // http_front.cpp), to take that back. Must not throw.
    std::function<void()> withdraw;
    // Set by a handler that counts its outcome only once it is known
    // whether the answer is sent as it is (false) or withheld for a 503
    // (true; after withdraw): a login, `logins_total{outcome="ok"}` or
    // `{outcome="withheld"}`. Called on the worker thread. Must not throw.
    std::function<void(bool withheld)> settle;

    void set_header(std::string name, std::string value)
    {
        headers.emplace_back(std::move(name), std::move(value));
    }
};

// Whether caches on the way may keep an answer. no_store sends
// `Cache-Control: no-store` (RFC 9111, 5.2.2.5) for answers that name
// users or hold a key; DRF's views set no caching header (unspecified).
enum class CacheControl { unspecified, no_store };

// An answer whose body is JSON already rendered (`body`; "" for none, as
// a 204's), content type application/json. With CacheControl::no_store,
// Cache-Control is its first header: headers set afterwards follow it.
HttpResponse json_answer(int status, std::string body,
                         CacheControl cache = CacheControl::unspecified);
// One of DRF's exceptions (core/drf_messages.h): its status and its
// {"detail": ...} body.
HttpResponse json_answer(const drf::DrfError &error,
                         CacheControl cache = CacheControl::unspecified);

// What the router makes of a request whose head has arrived (event-loop
// thread: must not block). Either an answer at once, without reading a
// body, or a handler run on a worker thread once the body is in.
struct Dispatch {
    std::optional<HttpResponse> answer;
    std::function<HttpResponse(const HttpRequest &)> handler;
};
using Router = std::function<Dispatch(const HttpRequest &)>;

class HttpServer
{
  public:
    // Serves `listen_fd` (bound and listening; the server closes it).
    // Throws std::runtime_error when MHD cannot start.
    HttpServer(int listen_fd, const HttpLimits &limits, Router router);
    ~HttpServer();
    HttpServer(const HttpServer &) = delete;
    HttpServer &operator=(const HttpServer &) = delete;

    // Graceful stop: closes the listening socket, waits for the requests
    // in flight to be answered (at most `grace`), then closes every
    // connection. Any thread; once.
    void stop(std::chrono::seconds grace);

    struct Impl;

  private:
    std::unique_ptr<Impl> impl_;
};

} // namespace authtoken
