// core/utf8.h, the one UTF-8 walker: CPython 3.11's strict decoder, step by
// step, with the error lengths CPython reports (and replaces with one
// U+FFFD each).
#include "cmocka_cpp.h"

#include "core/utf8.h"

#include <string>
#include <string_view>

using authtoken::is_valid_utf8;
using authtoken::utf8_start_before;
using authtoken::utf8_step;
using Kind = authtoken::Utf8Step::Kind;

namespace
{

void expect_step(std::string_view text, Kind kind, std::size_t length,
                 char32_t code_point = 0)
{
    authtoken::Utf8Step step = utf8_step(text, 0);
    if (step.kind != kind || step.length != length ||
        (kind == Kind::valid && step.code_point != code_point)) {
        fail_msg("step over %zu bytes: kind %d length %zu U+%04X, expected "
                 "kind %d length %zu U+%04X",
                 text.size(), static_cast<int>(step.kind), step.length,
                 static_cast<unsigned>(step.code_point), static_cast<int>(kind),
                 length, static_cast<unsigned>(code_point));
    }
}

// A transcription of the Unicode definition (Table 3-7), the slow way: the
// value of the bits, then the shortest form, the range and the surrogates.
bool reference_valid(const unsigned char *p, std::size_t n)
{
    std::size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        std::size_t length = c < 0x80    ? 1
                             : c >= 0xf8 ? 0
                             : c >= 0xf0 ? 4
                             : c >= 0xe0 ? 3
                             : c >= 0xc0 ? 2
                                         : 0;
        if (length == 0 || i + length > n) {
            return false;
        }
        char32_t value = length == 1 ? c : c & (0x7f >> length);
        for (std::size_t k = 1; k < length; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return false;
            }
            value = (value << 6) | (p[i + k] & 0x3f);
        }
        const char32_t shortest[] = {0, 0, 0x80, 0x800, 0x10000};
        if (value < shortest[length] || value > 0x10ffff ||
            (value >= 0xd800 && value <= 0xdfff)) {
            return false;
        }
        i += length;
    }
    return true;
}

void test_valid_characters_decode_to_their_code_points(void **)
{
    expect_step("A", Kind::valid, 1, 0x41);
    expect_step(std::string_view("\0", 1), Kind::valid, 1, 0);
    expect_step("\x7f", Kind::valid, 1, 0x7f);
    expect_step("\xc2\x80", Kind::valid, 2, 0x80);
    expect_step("\xdf\xbf", Kind::valid, 2, 0x7ff);
    expect_step("\xe0\xa0\x80", Kind::valid, 3, 0x800);
    expect_step("\xe2\x80\xa8", Kind::valid, 3, 0x2028);
    expect_step("\xed\x9f\xbf", Kind::valid, 3, 0xd7ff);
    expect_step("\xee\x80\x80", Kind::valid, 3, 0xe000);
    expect_step("\xef\xbf\xbf", Kind::valid, 3, 0xffff);
    expect_step("\xf0\x90\x80\x80", Kind::valid, 4, 0x10000);
    expect_step("\xf0\x9f\x98\x80", Kind::valid, 4, 0x1f600);
    expect_step("\xf4\x8f\xbf\xbf", Kind::valid, 4, 0x10ffff);
}

// Overlong forms: C0 and C1 never start a character; E0 and F0 need a
// second byte high enough.
void test_overlong_forms_are_errors_of_one_byte(void **)
{
    expect_step("\xc0\x80", Kind::invalid_start, 1);
    expect_step("\xc1\xbf", Kind::invalid_start, 1);
    expect_step("\xe0\x80\x80", Kind::invalid_continuation, 1);
    expect_step("\xe0\x9f\xbf", Kind::invalid_continuation, 1);
    expect_step("\xf0\x80\x80\x80", Kind::invalid_continuation, 1);
    expect_step("\xf0\x8f\xbf\xbf", Kind::invalid_continuation, 1);
}

void test_surrogates_and_beyond_u10ffff_are_errors(void **)
{
    expect_step("\xed\xa0\x80", Kind::invalid_continuation, 1); // U+D800
    expect_step("\xed\xbf\xbf", Kind::invalid_continuation, 1); // U+DFFF
    expect_step("\xf4\x90\x80\x80", Kind::invalid_continuation, 1);
    expect_step("\xf5\x80\x80\x80", Kind::invalid_start, 1);
    expect_step("\xff", Kind::invalid_start, 1);
    expect_step("\x80", Kind::invalid_start, 1); // lone continuation
    expect_step("\xbf", Kind::invalid_start, 1);
}

// b'\xe2\x82'.decode() is "unexpected end of data" over both bytes; a bad
// byte inside is an invalid continuation covering what came before it.
void test_truncated_and_broken_sequences_cover_their_maximal_subpart(void **)
{
    expect_step("\xc3", Kind::truncated, 1);
    expect_step("\xe2\x82", Kind::truncated, 2);
    expect_step("\xf0\x9f\x98", Kind::truncated, 3);
    expect_step("\xe2\x28\xa1", Kind::invalid_continuation, 1);
    expect_step("\xe2\x82\x28", Kind::invalid_continuation, 2);
    expect_step("\xf0\x9f\x98\x41", Kind::invalid_continuation, 3);
    expect_step("\xc3\xc3", Kind::invalid_continuation, 1);
    // A step never reads past the end it is given.
    authtoken::Utf8Step step =
        utf8_step(std::string_view("\xe2\x82\xac", 2), 0);
    assert_true(step.kind == Kind::truncated);
    assert_int_equal(step.length, 2);
}

void test_steps_start_where_they_are_told(void **)
{
    std::string_view text = "a\xc3\xa9\xe2\x82";
    expect_step(text.substr(1), Kind::valid, 2, 0xe9);
    authtoken::Utf8Step step = utf8_step(text, 3);
    assert_true(step.kind == Kind::truncated);
    assert_int_equal(step.length, 2);
}

// Every string of one to three bytes, and every four-byte string with a
// four-byte lead, is valid exactly when the Unicode definition says so.
void test_validity_matches_the_unicode_definition_exhaustively(void **)
{
    unsigned char buffer[4] = {0, 0, 0, 0};
    auto check = [&](std::size_t n) {
        std::string_view text(reinterpret_cast<const char *>(buffer), n);
        if (is_valid_utf8(text) != reference_valid(buffer, n)) {
            fail_msg("%02x %02x %02x %02x (%zu bytes): is_valid_utf8 says %d",
                     buffer[0], buffer[1], buffer[2], buffer[3], n,
                     is_valid_utf8(text));
        }
    };
    for (unsigned a = 0; a < 256; a++) {
        buffer[0] = static_cast<unsigned char>(a);
        check(1);
        for (unsigned b = 0; b < 256; b++) {
            buffer[1] = static_cast<unsigned char>(b);
            check(2);
            for (unsigned c = 0; c < 256; c++) {
                buffer[2] = static_cast<unsigned char>(c);
                check(3);
            }
        }
    }
    for (unsigned a = 0xf0; a < 0xf8; a++) {
        for (unsigned b = 0x70; b < 0xd0; b++) {
            for (unsigned c = 0x70; c < 0xd0; c++) {
                for (unsigned d = 0x70; d < 0xd0; d++) {
                    buffer[0] = static_cast<unsigned char>(a);
                    buffer[1] = static_cast<unsigned char>(b);
                    buffer[2] = static_cast<unsigned char>(c);
                    buffer[3] = static_cast<unsigned char>(d);
                    check(4);
                }
            }
        }
    }
}

void test_start_before_walks_back_over_continuation_bytes(void **)
{
    std::string_view text = "a\xc3\xa9\xf0\x9f\x98\x80z";
    assert_int_equal(utf8_start_before(text, 0, 1), 0);
    assert_int_equal(utf8_start_before(text, 0, 3), 1);
    assert_int_equal(utf8_start_before(text, 0, 7), 3);
    assert_int_equal(utf8_start_before(text, 0, 8), 7);
    // Never before `begin`, even inside a character.
    assert_int_equal(utf8_start_before(text, 5, 7), 5);
}

} // namespace

int main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_characters_decode_to_their_code_points),
        cmocka_unit_test(test_overlong_forms_are_errors_of_one_byte),
        cmocka_unit_test(test_surrogates_and_beyond_u10ffff_are_errors),
        cmocka_unit_test(
            test_truncated_and_broken_sequences_cover_their_maximal_subpart),
        cmocka_unit_test(test_steps_start_where_they_are_told),
        cmocka_unit_test(
            test_validity_matches_the_unicode_definition_exhaustively),
        cmocka_unit_test(test_start_before_walks_back_over_continuation_bytes),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
