// Token keys are stored by SHA-256 digest; the digest must be the standard
// one so that the daemon, the CLI, the module and a Django import agree.
#include "cmocka_cpp.h"

#include "core/redis_keys.h"
#include "core/token_digest.h"

#include <string>

namespace {

std::string hex(const authtoken::Sha256Hex &d)
{
    return {d.data(), d.size()};
}

void test_digest_of_empty_key_is_the_standard_vector(void **)
{
    assert_string_equal(
        hex(authtoken::token_digest_hex("")).c_str(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

void test_digest_of_abc_is_the_standard_vector(void **)
{
    assert_string_equal(
        hex(authtoken::token_digest_hex("abc")).c_str(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

void test_digester_is_reusable_and_deterministic(void **)
{
    authtoken::TokenDigester digester;
    authtoken::Sha256Hex a{}, b{}, c{};
    assert_true(digester.digest_hex("9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b", a));
    assert_true(digester.digest_hex("other", b));
    assert_true(digester.digest_hex("9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b", c));
    assert_true(a == c);
    assert_false(a == b);
}

void test_record_key_is_prefix_and_digest(void **)
{
    auto digest = authtoken::token_digest_hex("abc");
    authtoken::keys::TokenRecordKey key(digest);
    std::string expected = "authtoken:token:" + hex(digest);
    assert_string_equal(std::string(key.view()).c_str(), expected.c_str());
    assert_string_equal(authtoken::keys::token_record_key(hex(digest)).c_str(),
                        expected.c_str());
}

} // namespace

int main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digest_of_empty_key_is_the_standard_vector),
        cmocka_unit_test(test_digest_of_abc_is_the_standard_vector),
        cmocka_unit_test(test_digester_is_reusable_and_deterministic),
        cmocka_unit_test(test_record_key_is_prefix_and_digest),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
