// DRF's TokenAuthentication.authenticate() header rules, case by case.
#include "cmocka_cpp.h"

#include "core/authorization_header.h"
#include "core/utf8.h"

#include <string>
#include <string_view>

using authtoken::HeaderVerdict;
using authtoken::parse_authorization;

namespace
{

const std::string_view kToken[] = {"Token"};
const std::string_view kTokenAndBearer[] = {"Token", "Bearer"};

authtoken::ParsedAuthorization parse(std::string_view value)
{
    return parse_authorization(value, kToken, 1);
}

void expect(std::string_view value, HeaderVerdict verdict,
            std::string_view key = {})
{
    auto parsed = parse(value);
    if (parsed.verdict != verdict) {
        fail_msg("\"%.*s\": verdict %d, expected %d",
                 static_cast<int>(value.size()), value.data(),
                 static_cast<int>(parsed.verdict), static_cast<int>(verdict));
    }
    if (parsed.key != key) {
        fail_msg("\"%.*s\": key \"%.*s\", expected \"%.*s\"",
                 static_cast<int>(value.size()), value.data(),
                 static_cast<int>(parsed.key.size()), parsed.key.data(),
                 static_cast<int>(key.size()), key.data());
    }
}

void test_absent_or_empty_header_is_not_provided(void **)
{
    expect("", HeaderVerdict::not_provided);
    expect("   ", HeaderVerdict::not_provided);
    expect("\t\v\f\r\n", HeaderVerdict::not_provided);
}

void test_other_schemes_are_not_provided(void **)
{
    expect("Basic YWxpY2U6d29uZGVybGFuZA==", HeaderVerdict::not_provided);
    expect("Bearer abc", HeaderVerdict::not_provided);
    expect("Tokens abc", HeaderVerdict::not_provided);
    expect("Token: abc", HeaderVerdict::not_provided);
    expect("Tokenabc", HeaderVerdict::not_provided);
}

void test_keyword_is_case_insensitive_ascii(void **)
{
    expect("token abc", HeaderVerdict::key_present, "abc");
    expect("TOKEN abc", HeaderVerdict::key_present, "abc");
    expect("tOkEn abc", HeaderVerdict::key_present, "abc");
    // Latin-1 lookalikes are not folded: bytes.lower() is ASCII only.
    expect("TOK\xc9N abc", HeaderVerdict::not_provided);
}

void test_keyword_alone_has_no_credentials(void **)
{
    expect("Token", HeaderVerdict::no_credentials);
    expect("  Token  ", HeaderVerdict::no_credentials);
    expect("Token\t", HeaderVerdict::no_credentials);
}

void test_more_than_two_parts_contain_spaces(void **)
{
    expect("Token abc extra", HeaderVerdict::contains_spaces);
    expect("Token a b c d", HeaderVerdict::contains_spaces);
    expect("Token abc\x0b"
           "def",
           HeaderVerdict::contains_spaces);
    expect("Token abc\x0c"
           "def",
           HeaderVerdict::contains_spaces);
}

void test_parts_are_counted_before_the_key_is_decoded(void **)
{
    // DRF checks len(auth) > 2 before auth[1].decode().
    expect("Token \xff extra", HeaderVerdict::contains_spaces);
}

void test_all_six_ascii_whitespace_bytes_separate(void **)
{
    expect("Token\tabc", HeaderVerdict::key_present, "abc");
    expect("Token\nabc", HeaderVerdict::key_present, "abc");
    expect("Token\rabc", HeaderVerdict::key_present, "abc");
    expect("Token\x0b"
           "abc",
           HeaderVerdict::key_present, "abc");
    expect("Token\x0c"
           "abc",
           HeaderVerdict::key_present, "abc");
    expect("Token  \t abc  ", HeaderVerdict::key_present, "abc");
}

void test_non_ascii_spaces_do_not_separate(void **)
{
    // NBSP (0xa0 in latin-1) is not whitespace for bytes.split().
    expect("Token\xa0"
           "abc",
           HeaderVerdict::not_provided);
    expect("Token a\xa0"
           "b",
           HeaderVerdict::invalid_characters);
}

void test_key_must_be_valid_utf8(void **)
{
    expect("Token \xff", HeaderVerdict::invalid_characters);
    expect("Token abc\xe9", HeaderVerdict::invalid_characters);
    expect("Token \xc3\xa9", HeaderVerdict::key_present, "\xc3\xa9");
    expect("Token \xf0\x9f\x98\x80", HeaderVerdict::key_present,
           "\xf0\x9f\x98\x80");
}

void test_utf8_rules_match_python_strict_decoder(void **)
{
    using authtoken::is_valid_utf8;
    assert_true(is_valid_utf8(""));
    assert_true(is_valid_utf8("plain"));
    assert_true(is_valid_utf8("\xc2\x80"));          // U+0080
    assert_true(is_valid_utf8("\xef\xbf\xbf"));      // U+FFFF
    assert_true(is_valid_utf8("\xf4\x8f\xbf\xbf"));  // U+10FFFF
    assert_false(is_valid_utf8("\xc0\x80"));         // overlong NUL
    assert_false(is_valid_utf8("\xc1\xbf"));         // overlong
    assert_false(is_valid_utf8("\xe0\x80\x80"));     // overlong
    assert_false(is_valid_utf8("\xed\xa0\x80"));     // surrogate U+D800
    assert_false(is_valid_utf8("\xf0\x80\x80\x80")); // overlong
    assert_false(is_valid_utf8("\xf4\x90\x80\x80")); // above U+10FFFF
    assert_false(is_valid_utf8("\xf5\x80\x80\x80"));
    assert_false(is_valid_utf8("\x80"));         // lone continuation
    assert_false(is_valid_utf8("\xc3"));         // truncated
    assert_false(is_valid_utf8("\xe2\x82"));     // truncated
    assert_false(is_valid_utf8("\xe2\x28\xa1")); // bad continuation
}

void test_key_format_is_not_checked(void **)
{
    // Unknown-looking keys are looked up and simply not found, as in DRF.
    expect("Token abc", HeaderVerdict::key_present, "abc");
    expect("Token \"0123\"", HeaderVerdict::key_present, "\"0123\"");
    expect("Token token=abc", HeaderVerdict::key_present, "token=abc");
    std::string huge(8192, 'a');
    expect("Token " + huge, HeaderVerdict::key_present, huge);
}

void test_several_keywords_are_all_accepted(void **)
{
    auto parsed = parse_authorization("bearer xyz", kTokenAndBearer, 2);
    assert_int_equal(static_cast<int>(parsed.verdict),
                     static_cast<int>(HeaderVerdict::key_present));
    assert_true(parsed.key == "xyz");
    parsed = parse_authorization("Basic xyz", kTokenAndBearer, 2);
    assert_int_equal(static_cast<int>(parsed.verdict),
                     static_cast<int>(HeaderVerdict::not_provided));
}

void test_nul_byte_is_part_of_the_key(void **)
{
    std::string value("Token a\0b", 9);
    auto parsed = parse(value);
    assert_int_equal(static_cast<int>(parsed.verdict),
                     static_cast<int>(HeaderVerdict::key_present));
    assert_int_equal(parsed.key.size(), 3);
}

} // namespace

int main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_absent_or_empty_header_is_not_provided),
        cmocka_unit_test(test_other_schemes_are_not_provided),
        cmocka_unit_test(test_keyword_is_case_insensitive_ascii),
        cmocka_unit_test(test_keyword_alone_has_no_credentials),
        cmocka_unit_test(test_more_than_two_parts_contain_spaces),
        cmocka_unit_test(test_parts_are_counted_before_the_key_is_decoded),
        cmocka_unit_test(test_all_six_ascii_whitespace_bytes_separate),
        cmocka_unit_test(test_non_ascii_spaces_do_not_separate),
        cmocka_unit_test(test_key_must_be_valid_utf8),
        cmocka_unit_test(test_utf8_rules_match_python_strict_decoder),
        cmocka_unit_test(test_key_format_is_not_checked),
        cmocka_unit_test(test_several_keywords_are_all_accepted),
        cmocka_unit_test(test_nul_byte_is_part_of_the_key),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
