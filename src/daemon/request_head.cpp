#include "daemon/request_head.h"

#include "core/drf_messages.h"

namespace authtoken
{

HeadScan scan_request_head(std::string_view bytes, const HeadLimits &limits)
{
    std::size_t line_start = 0;
    std::size_t fields = 0;
    bool request_line = true;
    for (std::size_t i = 0; i < bytes.size(); i++) {
        if (bytes[i] != '\n') {
            // A line still without its newline (+1 for a pending '\r'):
            // known to be too long before the head is.
            if (i - line_start >= limits.max_line_size + 1) {
                return request_line ? HeadScan::kRequestLineTooLong
                                    : HeadScan::kHeaderLineTooLong;
            }
            if (i >= limits.max_head_size) {
                return HeadScan::kTooLarge;
            }
            continue;
        }
        if (i >= limits.max_head_size) {
            return HeadScan::kTooLarge;
        }
        std::size_t length = i - line_start;
        if (length > 0 && bytes[i - 1] == '\r') {
            length--;
        }
        line_start = i + 1;
        if (request_line) {
            if (length > limits.max_line_size) {
                return HeadScan::kRequestLineTooLong;
            }
            request_line = false;
            if (length == 0) {
                return HeadScan::kComplete; // the server refuses it
            }
        } else if (length == 0) {
            return HeadScan::kComplete;
        } else if (length > limits.max_line_size) {
            return HeadScan::kHeaderLineTooLong;
        } else if (++fields > limits.max_header_fields) {
            return HeadScan::kTooManyFields;
        }
    }
    return HeadScan::kIncomplete;
}

int head_refusal_status(HeadScan scan)
{
    return scan == HeadScan::kRequestLineTooLong ? 414 : 431;
}

std::string head_refusal_detail(HeadScan scan, const HeadLimits &limits)
{
    switch (scan) {
    case HeadScan::kRequestLineTooLong:
        return drf::request_line_longer_than_detail(limits.max_line_size);
    case HeadScan::kHeaderLineTooLong:
        return drf::header_line_longer_than_detail(limits.max_line_size);
    case HeadScan::kTooManyFields:
        return drf::more_header_fields_than_detail(limits.max_header_fields);
    default:
        return drf::headers_larger_than_detail(limits.max_head_size);
    }
}

} // namespace authtoken
