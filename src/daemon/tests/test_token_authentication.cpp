// What the Authorization header alone decides in authtokend's
// TokenAuthentication (DRF 3.14 authentication.py), and who IsAdminUser
// lets in. The lookups themselves are tested through nginx in t/.
#include "daemon/token_authentication.h"

#include <string>

// cmocka last: its macros (fail, ...) clash with names in C++ headers.
#include "core/tests/cmocka_cpp.h"

using namespace authtoken;

namespace
{

std::string refusal_body(std::string_view header)
{
    AuthorizationClaim claim = claim_from_header(header);
    return claim.refusal == nullptr
               ? std::string("key:") + std::string(claim.key)
               : std::string(claim.refusal->body);
}

void header_verdicts_are_drfs(void **)
{
    const std::string key = "0123456789abcdef0123456789abcdef01234567";
    assert_string_equal(
        refusal_body("").c_str(),
        R"({"detail":"Authentication credentials were not provided."})");
    assert_string_equal(
        refusal_body("Bearer " + key).c_str(),
        R"({"detail":"Authentication credentials were not provided."})");
    assert_string_equal(
        refusal_body("Token").c_str(),
        R"({"detail":"Invalid token header. No credentials provided."})");
    assert_string_equal(
        refusal_body("Token a b").c_str(),
        R"({"detail":"Invalid token header. Token string should not contain spaces."})");
    assert_string_equal(
        refusal_body("Token \xff\xfe").c_str(),
        R"({"detail":"Invalid token header. Token string should not contain invalid characters."})");
    // The keyword is matched case-insensitively, as DRF's .lower().
    assert_string_equal(refusal_body("tOKEN " + key).c_str(),
                        ("key:" + key).c_str());
    assert_int_equal(claim_from_header("Token").refusal->status, 401);
}

void admin_is_staff_or_superuser(void **)
{
    UserRecord user;
    assert_false(is_admin_user(user));
    user.is_staff = true;
    assert_true(is_admin_user(user));
    user.is_staff = false;
    user.is_superuser = true;
    assert_true(is_admin_user(user));
    HttpResponse denied = permission_denied();
    assert_int_equal(denied.status, 403);
    assert_string_equal(
        denied.body.c_str(),
        R"({"detail":"You do not have permission to perform this action."})");
}

} // namespace

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(header_verdicts_are_drfs),
        cmocka_unit_test(admin_is_staff_or_superuser),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
