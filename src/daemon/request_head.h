// nginx's bound on a request head (large_client_header_buffers 4 8k),
// checked on the bytes of a head as they arrive: a request line longer than
// max_line_size gets 414; a header line longer than it, a head over
// max_head_size bytes or more than max_header_fields fields get 431. Pure:
// no I/O. Used on each connection's first request before libmicrohttpd
// reads it (http_server.cpp), since MHD 0.9.75 answers a head that
// outgrows its memory pool with its own HTML.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace authtoken
{

struct HeadLimits {
    std::size_t max_line_size = 8192;
    std::size_t max_head_size = 32768;
    std::size_t max_header_fields = 100;
};

enum class HeadScan {
    kComplete,   // the empty line that ends the head is in `bytes`
    kIncomplete, // within the limits so far: more bytes are needed
    kRequestLineTooLong,
    kHeaderLineTooLong,
    kTooLarge,
    kTooManyFields,
};

// `bytes`: what has arrived of a request, from its first byte. Lines end
// in LF or CRLF (the CR is not counted in a line's length).
HeadScan scan_request_head(std::string_view bytes, const HeadLimits &limits);

// The refusal of a scan that is neither kComplete nor kIncomplete: the
// status (414 or 431) and DRF-style detail text.
int head_refusal_status(HeadScan scan);
std::string head_refusal_detail(HeadScan scan, const HeadLimits &limits);

} // namespace authtoken
