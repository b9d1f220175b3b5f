// Token keys are stored by SHA-256 digest; the digest must be the standard
// one so that the daemon, the CLI, the module and a Django import agree.
#include "cmocka_cpp.h"

#include "core/redis_keys.h"
#include "core/token_digest.h"

#include <cctype>
#include <string>

namespace
{

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
    assert_true(
        digester.digest_hex("9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b", a));
    assert_true(digester.digest_hex("other", b));
    assert_true(
        digester.digest_hex("9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b", c));
    assert_true(a == c);
    assert_false(a == b);
}

// Schema version 3: the prefix and the base64url of the digest's bytes
// (python3: base64.urlsafe_b64encode(sha256(b"abc")).rstrip(b"=")).
void test_record_key_is_prefix_and_base64url_digest(void **)
{
    auto digest = authtoken::token_digest_hex("abc");
    authtoken::keys::TokenRecordKey key(digest);
    std::string expected =
        "authtoken:token:ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0";
    assert_string_equal(std::string(key.view()).c_str(), expected.c_str());
    assert_string_equal(authtoken::keys::token_record_key(hex(digest)).c_str(),
                        expected.c_str());
    assert_string_equal(
        authtoken::keys::legacy_token_record_key(hex(digest)).c_str(),
        ("authtoken:token:" + hex(digest)).c_str());
}

void test_hex_round_trip_of_raw_digest(void **)
{
    authtoken::TokenDigester digester;
    authtoken::Sha256 raw{}, back{};
    authtoken::Sha256Hex hex{};
    assert_true(digester.digest("abc", raw, hex));
    assert_true(authtoken::digest_from_hex({hex.data(), hex.size()}, back));
    assert_true(raw == back);
    std::string upper(hex.data(), hex.size());
    for (auto &c : upper) {
        c = static_cast<char>(toupper(c));
    }
    assert_true(authtoken::digest_from_hex(upper, back));
    assert_true(raw == back);
}

void test_hex_parse_rejects_wrong_length_and_non_hex(void **)
{
    authtoken::Sha256 raw{};
    assert_false(authtoken::digest_from_hex("", raw));
    assert_false(authtoken::digest_from_hex(std::string(63, 'a'), raw));
    assert_false(authtoken::digest_from_hex(std::string(65, 'a'), raw));
    assert_false(authtoken::digest_from_hex(std::string(63, 'a') + "g", raw));
    assert_true(authtoken::digest_from_hex(std::string(64, 'a'), raw));
}

} // namespace

int main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digest_of_empty_key_is_the_standard_vector),
        cmocka_unit_test(test_digest_of_abc_is_the_standard_vector),
        cmocka_unit_test(test_digester_is_reusable_and_deterministic),
        cmocka_unit_test(test_record_key_is_prefix_and_base64url_digest),
        cmocka_unit_test(test_hex_round_trip_of_raw_digest),
        cmocka_unit_test(test_hex_parse_rejects_wrong_length_and_non_hex),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
