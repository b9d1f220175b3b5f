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
};

class DeadlineServer : public httplib::Server
{
  public:
    explicit DeadlineServer(ConnectionLimits limits) : limits_(limits) {}

  private:
    // Called by httplib's accept loop, on a task-queue thread, once per
    // accepted connection; owns `sock` and closes it.
    bool process_and_close_socket(socket_t sock) override;

    ConnectionLimits limits_;
};

} // namespace authtoken
