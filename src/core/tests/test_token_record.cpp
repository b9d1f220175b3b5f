// The verdict the module reaches from one HMGET reply.
#include "cmocka_cpp.h"

#include "core/token_record.h"

#include <string>

using authtoken::judge_token_record;
using authtoken::TokenRecordView;
using authtoken::TokenVerdict;

namespace
{

constexpr std::int64_t kNow = 1800000000;

TokenRecordView record(const char *active, const char *expires = nullptr)
{
    TokenRecordView r;
    r.uid = "42";
    r.user = "alice";
    r.active = active;
    if (expires != nullptr) {
        r.expires = expires;
    }
    return r;
}

void check(const TokenRecordView &r, TokenVerdict expected)
{
    assert_int_equal(static_cast<int>(judge_token_record(r, kNow).verdict),
                     static_cast<int>(expected));
}

std::int64_t expires_of(const TokenRecordView &r)
{
    return judge_token_record(r, kNow).expires;
}

void test_all_nil_is_an_unknown_token(void **)
{
    check(TokenRecordView{}, TokenVerdict::unknown);
}

void test_active_user_is_valid(void **)
{
    check(record("1"), TokenVerdict::valid);
    check(record("1", "0"), TokenVerdict::valid);
}

void test_inactive_user_is_refused(void **)
{
    check(record("0"), TokenVerdict::inactive);
}

void test_expired_token_is_unknown_before_inactive(void **)
{
    check(record("1", "1700000000"), TokenVerdict::expired);
    check(record("0", "1700000000"), TokenVerdict::expired);
    check(record("1", "1800000000"), TokenVerdict::expired); // at expiry
    check(record("1", "1800000001"), TokenVerdict::valid);
}

void test_incomplete_or_garbled_records_are_malformed(void **)
{
    TokenRecordView r = record("1");
    r.uid.reset();
    check(r, TokenVerdict::malformed);

    r = record("1");
    r.uid = "4x";
    check(r, TokenVerdict::malformed);

    r = record("1");
    r.user = "";
    check(r, TokenVerdict::malformed);

    check(record("yes"), TokenVerdict::malformed);
    check(record(""), TokenVerdict::malformed);
    check(record("1", "soon"), TokenVerdict::malformed);
    check(record("1", "-5"), TokenVerdict::malformed);

    r = TokenRecordView{};
    r.expires = "0"; // a stray field alone is not a token
    check(r, TokenVerdict::malformed);
}

// A user name goes into $auth_token_user, an upstream header and log lines:
// CR/LF there is header injection (issue 10 item 4).
void test_user_names_with_control_bytes_are_malformed(void **)
{
    const char *bad[] = {"alice\r\nX-Admin: 1",
                         "alice\n",
                         "\ralice",
                         "al\tice",
                         "al\x7fice",
                         "al\x01ice",
                         " alice",
                         "alice ",
                         " ",
                         "\x1b[31malice"};
    for (const char *name : bad) {
        TokenRecordView r = record("1");
        r.user = name;
        check(r, TokenVerdict::malformed);
        r.active = "0"; // inactive users are not spared
        check(r, TokenVerdict::malformed);
    }
    // Embedded NUL: the view carries its length.
    TokenRecordView r = record("1");
    r.user = std::string_view("al\0ice", 6);
    check(r, TokenVerdict::malformed);
}

void test_user_names_with_inner_space_and_utf8_are_valid(void **)
{
    const char *good[] = {"alice", "a b", "Zo\xc3\xab", "a@b.c+d-e_f",
                          "\xe6\x97\xa5\xe6\x9c\xac"};
    for (const char *name : good) {
        TokenRecordView r = record("1");
        r.user = name;
        check(r, TokenVerdict::valid);
    }
}

// The judgement carries the expiry the record was judged by, so nobody
// parses `expires` a second time (the module's cache keeps it).
void test_judgement_carries_the_expiry_of_a_token_that_names_a_user(void **)
{
    assert_int_equal(expires_of(record("1", "1800000001")), 1800000001);
    assert_int_equal(expires_of(record("0", "1800000001")), 1800000001);
    assert_int_equal(expires_of(record("1", "1999999999999")), 1999999999999);
    assert_int_equal(expires_of(record("1", "0")), 0);
    assert_int_equal(expires_of(record("1")), 0);
}

// An unknown, expired or malformed token stays so until its record
// changes: its verdict has no expiry of its own.
void test_judgement_of_a_token_that_names_no_user_never_expires(void **)
{
    assert_int_equal(expires_of(TokenRecordView{}), 0);
    assert_int_equal(expires_of(record("1", "1700000000")), 0);
    assert_int_equal(expires_of(record("yes", "1900000000")), 0);
    assert_int_equal(expires_of(record("1", "soon")), 0);
}

void test_names_user_is_valid_and_inactive_only(void **)
{
    assert_true(authtoken::names_user(TokenVerdict::valid));
    assert_true(authtoken::names_user(TokenVerdict::inactive));
    assert_false(authtoken::names_user(TokenVerdict::unknown));
    assert_false(authtoken::names_user(TokenVerdict::expired));
    assert_false(authtoken::names_user(TokenVerdict::malformed));
}

void test_log_escape_hex_escapes_control_quote_backslash_and_high(void **)
{
    char out[64];
    std::string_view in("a\r\nb\"c\\d\x7f\xc3\xab ok", 14);
    std::size_t n = authtoken::log_escape(in, out, sizeof(out));
    assert_string_equal(std::string(out, n).c_str(),
                        "a\\x0D\\x0Ab\\x22c\\x5Cd\\x7F\\xC3\\xAB ok");
}

void test_log_escape_never_cuts_an_escape_in_half(void **)
{
    char out[6];
    std::size_t n = authtoken::log_escape("ab\ncd", out, sizeof(out));
    // "ab" fits, "\x0A" (4 bytes) fits exactly, "c" does not.
    assert_int_equal(n, 6);
    assert_memory_equal(out, "ab\\x0A", 6);
    n = authtoken::log_escape("abc\n", out, sizeof(out));
    assert_int_equal(n, 3); // the escape would need 7 bytes
    assert_int_equal(authtoken::log_escaped_size(3), 12);
}

} // namespace

int main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_nil_is_an_unknown_token),
        cmocka_unit_test(test_active_user_is_valid),
        cmocka_unit_test(test_inactive_user_is_refused),
        cmocka_unit_test(test_expired_token_is_unknown_before_inactive),
        cmocka_unit_test(test_incomplete_or_garbled_records_are_malformed),
        cmocka_unit_test(test_user_names_with_control_bytes_are_malformed),
        cmocka_unit_test(test_user_names_with_inner_space_and_utf8_are_valid),
        cmocka_unit_test(
            test_judgement_carries_the_expiry_of_a_token_that_names_a_user),
        cmocka_unit_test(
            test_judgement_of_a_token_that_names_no_user_never_expires),
        cmocka_unit_test(test_names_user_is_valid_and_inactive_only),
        cmocka_unit_test(
            test_log_escape_hex_escapes_control_quote_backslash_and_high),
        cmocka_unit_test(test_log_escape_never_cuts_an_escape_in_half),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
