// core/ascii.h: Python's bytes methods, ASCII only.
#include "cmocka_cpp.h"

#include "core/ascii.h"

#include <string>
#include <string_view>

namespace
{

void test_space_is_the_six_bytes_python_splits_on(void **)
{
    const std::string_view six = " \t\n\r\v\f";
    for (unsigned c = 0; c < 256; c++) {
        bool expected =
            six.find(static_cast<char>(c)) != std::string_view::npos;
        if (authtoken::is_ascii_space(static_cast<unsigned char>(c)) !=
            expected) {
            fail_msg("byte 0x%02x", c);
        }
    }
    // Not the separators str.isspace() adds (0x1c..0x1f, 0x85, 0xa0).
    assert_false(authtoken::is_ascii_space(0x1c));
    assert_false(authtoken::is_ascii_space(0x85));
    assert_false(authtoken::is_ascii_space(0xa0));
}

void test_strip_removes_ascii_space_at_both_ends_only(void **)
{
    using authtoken::strip_ascii_space;
    assert_true(strip_ascii_space(" \t\n\r\v\fa b\f\v\r\n\t ") == "a b");
    assert_true(strip_ascii_space("") == "");
    assert_true(strip_ascii_space(" \t ") == "");
    assert_true(strip_ascii_space("\xa0x\xa0") == "\xa0x\xa0");
    assert_true(strip_ascii_space("\x1cx") == "\x1cx");
}

void test_lower_changes_only_ascii_capitals(void **)
{
    for (unsigned c = 0; c < 256; c++) {
        char in = static_cast<char>(c);
        char expected = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : in;
        if (authtoken::ascii_lower(in) != expected) {
            fail_msg("byte 0x%02x", c);
        }
    }
    assert_string_equal(
        authtoken::ascii_lower("MuLtiPart/Form-DATA\xc3\x89").c_str(),
        "multipart/form-data\xc3\x89");
}

void test_case_insensitive_equality_is_ascii_only(void **)
{
    using authtoken::equals_ascii_case_insensitive;
    assert_true(equals_ascii_case_insensitive("Token", "tOKEN"));
    assert_true(equals_ascii_case_insensitive("", ""));
    assert_false(equals_ascii_case_insensitive("Token", "Tokens"));
    assert_false(equals_ascii_case_insensitive("\xc3\x89", "\xc3\xa9"));
    assert_false(equals_ascii_case_insensitive("@", "`")); // 0x40 vs 0x60
    assert_false(equals_ascii_case_insensitive("[", "{"));
}

void test_is_ascii_is_every_byte_below_0x80(void **)
{
    assert_true(authtoken::is_ascii(""));
    assert_true(authtoken::is_ascii(std::string_view("a\0\x7f", 3)));
    assert_false(authtoken::is_ascii("a\x80"));
    assert_false(authtoken::is_ascii("\xff"));
}

void test_starts_and_ends_with(void **)
{
    using authtoken::ends_with;
    using authtoken::starts_with;
    assert_true(starts_with("multipart/x", "multipart/"));
    assert_true(starts_with("abc", ""));
    assert_false(starts_with("ab", "abc"));
    assert_false(starts_with("xabc", "abc"));
    assert_true(ends_with("throttle.lua", ".lua"));
    assert_true(ends_with("abc", ""));
    assert_false(ends_with("lua", ".lua"));
    assert_false(ends_with("a.luax", ".lua"));
}

} // namespace

int main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_space_is_the_six_bytes_python_splits_on),
        cmocka_unit_test(test_strip_removes_ascii_space_at_both_ends_only),
        cmocka_unit_test(test_lower_changes_only_ascii_capitals),
        cmocka_unit_test(test_case_insensitive_equality_is_ascii_only),
        cmocka_unit_test(test_is_ascii_is_every_byte_below_0x80),
        cmocka_unit_test(test_starts_and_ends_with),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
