// Django 4.2's EmailValidator and EmailField(max_length=254) on
// auth.User.email (django_email.h); each case is what
// django.core.validators.validate_email accepts or refuses.
#include "issuer/django_email.h"

#include <string>

// Last: cmocka defines macros (fail) that clash with the standard headers.
#include "core/tests/cmocka_cpp.h"

namespace
{

using authtoken::validate_email;

void test_valid_emails_pass(void **)
{
    for (const char *ok :
         {"", "a@example.com", "Ops@Example.COM", "first.last+tag@a.b.co",
          "x!#$%&'*+/=?^_`{}|~-@example.org", "\"john\\ doe\"@example.com",
          "\"a\\\"b\"@example.com", "a@localhost", "a@[127.0.0.1]", "a@[::1]",
          "a@example.xn--p1ai",
          "a@b\xc3\xbc"
          "cher.de",
          "a@9.example.com"}) {
        if (!validate_email(ok).empty()) {
            fail_msg("refused: %s", ok);
        }
    }
}

void test_invalid_emails_get_djangos_message(void **)
{
    for (const char *bad : {"plain",
                            "a@",
                            "@example.com",
                            "a@b",
                            "a..b@example.com",
                            ".a@example.com",
                            "a.@example.com",
                            "a b@example.com",
                            "a@-example.com",
                            "a@example-.com",
                            "a@example.c",
                            "a@example.com-",
                            "a@exa mple.com",
                            "a@[1.2.3]",
                            "a@[x::1]",
                            "a@[01.2.3.4]",
                            "\"john doe\"@example.com",
                            "\"a\"b\"@example.com",
                            "j\xc3\xb6rg@example.com",
                            "a@example..com"}) {
        auto errors = validate_email(bad);
        if (errors.size() != 1 || errors[0] != "Enter a valid email address.") {
            fail_msg("accepted or wrong message: %s", bad);
        }
    }
}

void test_longer_than_254_characters_gets_max_length_too(void **)
{
    std::string long_local = std::string(250, 'a') + "@example.com";
    auto errors = validate_email(long_local);
    // Valid by EmailValidator (no 64-character local-part limit in
    // Django), refused by the model field's max_length.
    assert_int_equal(errors.size(), 1);
    assert_string_equal(errors[0].c_str(),
                        "Ensure this value has at most 254 characters "
                        "(it has 262).");
    std::string too_long = std::string(400, 'a') + "@example.com";
    errors = validate_email(too_long);
    assert_int_equal(errors.size(), 2);
    assert_string_equal(errors[0].c_str(), "Enter a valid email address.");
}

} // namespace

int main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_emails_pass),
        cmocka_unit_test(test_invalid_emails_get_djangos_message),
        cmocka_unit_test(test_longer_than_254_characters_gets_max_length_too),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
