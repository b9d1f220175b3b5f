// Django's username rules in src/issuer/django_username. Every expected
// value was computed with CPython 3.11 (Unicode 14.0):
//   n = unicodedata.normalize("NFKC", s)
//   re.search(r"^[\w.@+-]+\Z", n), len(n)
#include "issuer/django_username.h"

#include <string>
#include <string_view>
#include <vector>

// Last: cmocka defines macros (fail) that clash with the standard headers.
#include "core/tests/cmocka_cpp.h"

namespace
{

using namespace authtoken;

constexpr const char *kInvalid =
    "Enter a valid username. This value may contain only letters, numbers, "
    "and @/./+/-/_ characters.";

void assert_normalized(std::string_view in, std::string_view want)
{
    assert_string_equal(normalize_username(in).c_str(),
                        std::string(want).c_str());
}

bool valid(std::string_view name)
{
    return validate_username(name).empty();
}

void nfkc_as_python(void **)
{
    assert_normalized("alice", "alice");
    assert_normalized("cafe\xcc\x81", "caf\xc3\xa9"); // e + U+0301 -> é
    assert_normalized("\xef\xbd\x81lice", "alice");   // fullwidth a
    assert_normalized("\xef\xac\x81le", "file");      // U+FB01 ligature
    assert_normalized("\xe2\x91\xa0", "1");           // circled 1
    assert_normalized("\xe2\x85\xa3", "IV");          // roman numeral 4
    assert_normalized("\xc2\xaa", "a");               // feminine ordinal
    assert_normalized("x\xc2\xbd", "x1\xe2\x81\x84"
                                   "2"); // ½ -> 1⁄2
    assert_normalized("\xe2\x84\xa1", "TEL");
    // Not UTF-8: left as it is (Python would carry surrogates through).
    assert_normalized("bad\xffutf8", "bad\xffutf8");
    assert_normalized("", "");
}

void word_characters_as_python(void **)
{
    assert_true(valid("alice"));
    assert_true(valid("a.b@c+d-e_f"));
    assert_true(valid("caf\xc3\xa9"));
    assert_true(valid("\xd0\xbf\xd0\xbe\xd0\xbb\xd1\x8c")); // Cyrillic
    assert_true(valid("\xe7\x94\xa8\xe6\x88\xb7"));         // CJK
    assert_true(valid("\xd9\xa0\xd9\xa1")); // Arabic-Indic digits (Nd)
    assert_true(valid("\xe2\x85\xa3"));     // Ⅳ itself (Nl)
    assert_true(valid("_"));
    // Combining marks are not \w in Python: "KA + vowel sign I" and
    // "a + combining acute" (unnormalized) are refused.
    assert_false(valid("\xe0\xa4\x95\xe0\xa4\xbf"));
    assert_false(valid("a\xcc\x81"));
    assert_false(valid("user name"));
    assert_false(valid("alice\n")); // \Z, not $
    assert_false(valid("a\nb"));
    assert_false(valid("ctl\x01name"));
    assert_false(valid("x1\xe2\x81\x84"
                       "2")); // FRACTION SLASH is Sm
    assert_false(valid("bad\xffutf8"));
    assert_false(valid("\xed\xa0\x80")); // an encoded surrogate
    assert_false(valid(std::string("a\0b", 3)));
}

void messages_as_django(void **)
{
    std::vector<std::string> errors = validate_username("");
    assert_int_equal(errors.size(), 1);
    assert_string_equal(errors[0].c_str(), "This field cannot be blank.");

    errors = validate_username("a b");
    assert_int_equal(errors.size(), 1);
    assert_string_equal(errors[0].c_str(), kInvalid);

    // Characters, not bytes: 150 Cyrillic letters (300 bytes) are fine.
    std::string cyrillic;
    for (int i = 0; i < 150; i++) {
        cyrillic += "\xd0\xb6";
    }
    assert_true(valid(cyrillic));
    errors = validate_username(cyrillic + "\xd0\xb6");
    assert_int_equal(errors.size(), 1);
    assert_string_equal(errors[0].c_str(),
                        "Ensure this value has at most 150 characters "
                        "(it has 151).");

    // Both, in Django's order: the field's validator, then max_length.
    errors = validate_username(std::string(151, 'x') + " ");
    assert_int_equal(errors.size(), 2);
    assert_string_equal(errors[0].c_str(), kInvalid);
    assert_string_equal(errors[1].c_str(),
                        "Ensure this value has at most 150 characters "
                        "(it has 152).");
}

void length_in_python_characters(void **)
{
    assert_int_equal(username_length(""), 0);
    assert_int_equal(username_length("caf\xc3\xa9"), 4);
    assert_int_equal(username_length("\xf0\x9f\x98\x80"), 1); // one emoji
    // Each byte that is not UTF-8 is one character (surrogateescape).
    assert_int_equal(username_length("a\xff\xfe"), 3);
    assert_int_equal(username_length("\xe2\x82"), 2); // truncated sequence
}

} // namespace

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nfkc_as_python),
        cmocka_unit_test(word_characters_as_python),
        cmocka_unit_test(messages_as_django),
        cmocka_unit_test(length_in_python_characters),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
