// The request-head bound (nginx's large_client_header_buffers 4 8k) on
// heads as they arrive: complete, still incomplete, and each refusal, with
// the line limit found before the head limit when one line streams on.
#include "daemon/request_head.h"

#include <string>

// cmocka last: its macros (fail, ...) clash with names in C++ headers.
#include "core/tests/cmocka_cpp.h"

using namespace authtoken;

namespace
{

const HeadLimits kLimits{8192, 32768, 100};

std::string head_with(const std::string &lines)
{
    return "GET /healthz HTTP/1.1\r\nHost: x\r\n" + lines;
}

void complete_head_with_lf_or_crlf_is_complete(void **)
{
    assert_true(scan_request_head(head_with("\r\n"), kLimits) ==
                HeadScan::kComplete);
    assert_true(scan_request_head("GET / HTTP/1.0\nA: b\n\n", kLimits) ==
                HeadScan::kComplete);
    assert_true(scan_request_head(head_with("X: y\r\n"), kLimits) ==
                HeadScan::kIncomplete);
    assert_true(scan_request_head("", kLimits) == HeadScan::kIncomplete);
}

void line_of_exactly_8192_bytes_is_allowed(void **)
{
    std::string line = "X: " + std::string(8192 - 3, 'a');
    assert_true(scan_request_head(head_with(line + "\r\n\r\n"), kLimits) ==
                HeadScan::kComplete);
    assert_true(scan_request_head(head_with(line + "a\r\n\r\n"), kLimits) ==
                HeadScan::kHeaderLineTooLong);
}

void streamed_line_is_refused_before_its_newline(void **)
{
    // 60 KB of one header line: the line limit, not the head limit.
    assert_true(scan_request_head(head_with("X: " + std::string(60000, 'a')),
                                  kLimits) == HeadScan::kHeaderLineTooLong);
    assert_true(scan_request_head("GET /" + std::string(9000, 'a'), kLimits) ==
                HeadScan::kRequestLineTooLong);
    assert_true(scan_request_head("GET /" + std::string(8000, 'a'), kLimits) ==
                HeadScan::kIncomplete);
}

void fields_are_counted(void **)
{
    std::string fields;
    for (int i = 0; i < 99; i++) {
        fields += "A: b\r\n";
    }
    // Host and 99 more: 100 fields.
    assert_true(scan_request_head(head_with(fields + "\r\n"), kLimits) ==
                HeadScan::kComplete);
    assert_true(scan_request_head(head_with(fields + "A: b\r\n"), kLimits) ==
                HeadScan::kTooManyFields);
}

void head_over_the_limit_is_refused_unfinished(void **)
{
    std::string lines;
    for (int i = 0; i < 5; i++) {
        lines += "X-F: " + std::string(8000, 'b') + "\r\n";
    }
    assert_true(scan_request_head(head_with(lines), kLimits) ==
                HeadScan::kTooLarge);
}

void refusals_say_status_and_limit(void **)
{
    assert_int_equal(head_refusal_status(HeadScan::kRequestLineTooLong), 414);
    assert_int_equal(head_refusal_status(HeadScan::kTooManyFields), 431);
    assert_string_equal(
        head_refusal_detail(HeadScan::kHeaderLineTooLong, kLimits).c_str(),
        "A request header line is longer than 8192 bytes.");
    assert_string_equal(
        head_refusal_detail(HeadScan::kTooLarge, kLimits).c_str(),
        "Request headers are larger than 32768 bytes.");
    assert_string_equal(
        head_refusal_detail(HeadScan::kTooManyFields, kLimits).c_str(),
        "Request has more than 100 header fields.");
}

} // namespace

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(complete_head_with_lf_or_crlf_is_complete),
        cmocka_unit_test(line_of_exactly_8192_bytes_is_allowed),
        cmocka_unit_test(streamed_line_is_refused_before_its_newline),
        cmocka_unit_test(fields_are_counted),
        cmocka_unit_test(head_over_the_limit_is_refused_unfinished),
        cmocka_unit_test(refusals_say_status_and_limit),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
