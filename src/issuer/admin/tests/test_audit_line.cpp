// The audit line UserAdmin writes for every change (user_admin.h): its
// fields, and names that cannot forge a field or a line.
#include "issuer/admin/user_admin.h"

#include <string>

// Last: cmocka defines macros (fail) that clash with the standard headers.
#include "core/tests/cmocka_cpp.h"

namespace
{

using namespace authtoken;

void test_audit_line_names_actor_front_action_and_user(void **)
{
    assert_string_equal(
        audit_line({"ops", "http"}, "deactivate", "alice").c_str(),
        "audit: actor=\"ops\" via=http action=deactivate user=\"alice\"");
    assert_string_equal(
        audit_line({"root", "cli"}, "set_password", "bob", "token=kept")
            .c_str(),
        "audit: actor=\"root\" via=cli action=set_password user=\"bob\" "
        "token=kept");
}

void test_audit_line_escapes_quotes_backslashes_and_controls(void **)
{
    // An imported name may hold anything: a quote would end the field, a
    // newline would start a forged line.
    std::string line =
        audit_line({"ops", "http"}, "delete_user", "x\" actor=\"root\\\nfake");
    assert_string_equal(line.c_str(),
                        "audit: actor=\"ops\" via=http action=delete_user "
                        "user=\"x\\\" actor=\\\"root\\\\\\x0afake\"");
    assert_true(line.find('\n') == std::string::npos);
}

void test_non_utf8_names_are_escaped_bytes(void **)
{
    std::string line = audit_line({"\xff", "cli"}, "activate", "a\x01");
    assert_string_equal(
        line.c_str(),
        "audit: actor=\"\\xff\" via=cli action=activate user=\"a\\x01\"");
}

} // namespace

int main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_audit_line_names_actor_front_action_and_user),
        cmocka_unit_test(
            test_audit_line_escapes_quotes_backslashes_and_controls),
        cmocka_unit_test(test_non_utf8_names_are_escaped_bytes),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
