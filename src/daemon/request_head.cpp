#include "daemon/request_head.h"

#include "core/ascii.h"
#include "core/drf_messages.h"

#include <algorithm>

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

std::optional<FramingRefusal> check_framing(const HeaderFields &fields)
{
    std::optional<std::string_view> length;
    std::optional<std::string_view> encoding;
    for (const auto &[name, value] : fields) {
        if (equals_ascii_case_insensitive(name, "Content-Length")) {
            if (length) {
                return FramingRefusal{&drf::kAmbiguousFraming,
                                      "duplicate Content-Length"};
            }
            length = value;
        } else if (equals_ascii_case_insensitive(name, "Transfer-Encoding")) {
            if (encoding) {
                return FramingRefusal{&drf::kTransferEncodingNotImplemented,
                                      "more than one Transfer-Encoding"};
            }
            encoding = value;
        }
    }
    if (length && encoding) {
        return FramingRefusal{&drf::kAmbiguousFraming,
                              "both Content-Length and Transfer-Encoding"};
    }
    if (length && (length->empty() || length->size() > 18 ||
                   !std::all_of(length->begin(), length->end(), [](char ch) {
                       return ch >= '0' && ch <= '9';
                   }))) {
        return FramingRefusal{&drf::kAmbiguousFraming,
                              "invalid Content-Length"};
    }
    if (encoding && !equals_ascii_case_insensitive(*encoding, "chunked")) {
        return FramingRefusal{&drf::kTransferEncodingNotImplemented,
                              "unsupported Transfer-Encoding"};
    }
    return std::nullopt;
}

std::optional<FramingRefusal> check_head_framing(std::string_view head)
{
    HeaderFields fields;
    bool request_line = true;
    std::size_t start = 0;
    while (start < head.size()) {
        std::size_t end = head.find('\n', start);
        std::string_view line = head.substr(
            start, end == std::string_view::npos ? head.npos : end - start);
        start = end == std::string_view::npos ? head.size() : end + 1;
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        if (line.find('\0') != std::string_view::npos) {
            return FramingRefusal{&drf::kAmbiguousFraming,
                                  "NUL byte in the head"};
        }
        if (request_line) {
            request_line = false;
            continue;
        }
        if (line.empty()) {
            break; // the body, if any, follows
        }
        std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) {
            continue; // the server's parser answers it
        }
        fields.emplace_back(
            std::string(strip_ascii_space(line.substr(0, colon))),
            std::string(strip_ascii_space(line.substr(colon + 1))));
    }
    return check_framing(fields);
}

} // namespace authtoken
