// The verdict the module reaches from one HMGET reply.
#include "cmocka_cpp.h"

#include "core/token_record.h"

using authtoken::judge_token_record;
using authtoken::TokenRecordView;
using authtoken::TokenVerdict;

namespace {

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
    assert_int_equal(static_cast<int>(judge_token_record(r, kNow)),
                     static_cast<int>(expected));
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

} // namespace

int main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_nil_is_an_unknown_token),
        cmocka_unit_test(test_active_user_is_valid),
        cmocka_unit_test(test_inactive_user_is_refused),
        cmocka_unit_test(test_expired_token_is_unknown_before_inactive),
        cmocka_unit_test(test_incomplete_or_garbled_records_are_malformed),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
