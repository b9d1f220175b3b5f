// An httplib::Server whose connections cannot be held by slow clients for
// longer than a whole-request deadline, and which closes like nginx does
// (a lingering close) so that a peer still sending a body it was refused
// reads the answer instead of a reset.
//
// httplib 0.11 has only a per-read timeout: a client sending one byte per
// read_timeout keeps its connection, and its pool thread, forever. Its
// per-connection loop is the virtual Server::process_and_close_socket();
// this class replaces that loop (and the stream it reads through) and keeps
// everything else of httplib's: request parsing, routing, responses, via
// the protected Server::process_request().
#pragma once

#include <httplib.h>

#include <chrono>
#include <cstddef>

namespace authtoken
{

struct ConnectionLimits {
    // Each read of the request, and the wait for the first request of a
    // new connection.
    std::chrono::milliseconds read_timeout{5000};
    std::chrono::milliseconds write_timeout{5000};
    // The whole request (request line, headers and body) must have arrived
    // within this, counted from its first byte.
    std::chrono::milliseconds request_timeout{10000};
    // How long an idle keep-alive connection waits for its next request.
    std::chrono::milliseconds keep_alive_timeout{2000};
    std::size_t keep_alive_max_count = 5;
    // After the last answer on a connection whose request had a body:
    // read and discard what the peer still sends for at most this long
    // (0: plain close).
    std::chrono::milliseconds lingering_time{5000};
    // The request head (request line and header fields, up to the empty
    // line) is read and checked here before httplib parses it: httplib
    // 0.11 grows a line until its newline and counts no fields, so one
    // client streaming a header without a newline grew the daemon by
    // hundreds of MB. Modelled on nginx's `large_client_header_buffers 4
    // 8k`: a request line longer than max_line_size gets 414, a header
    // line longer than it, a head over max_head_size bytes or more than
    // max_header_fields fields get 431; the answer is JSON and the
    // connection is closed. max_line_size is httplib's own line limit
    // (CPPHTTPLIB_HEADER_MAX_LENGTH), so it is not a setting.
    std::size_t max_line_size = 8192;
    std::size_t max_head_size = 32768;
    std::size_t max_header_fields = 100;
};

class DeadlineServer : public httplib::Server
{
  public:
    explicit DeadlineServer(const ConnectionLimits &limits) : limits_(limits) {}

  private:
    // Called by httplib's accept loop, on a task-queue thread, once per
    // accepted connection; owns `sock` and closes it.
    bool process_and_close_socket(socket_t sock) override;

    ConnectionLimits limits_;
};

} // namespace authtoken
