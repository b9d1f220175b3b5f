// Token keys: the format DRF generates, and the sealed form that only the
// holder of the secret can open, for the right digest only.
#include "core/token_digest.h"
#include "issuer/token_key.h"
#include "issuer/token_sealer.h"

#include <regex>
#include <set>
#include <string>

// cmocka last: its macros (fail, ...) clash with names in C++ headers.
#include "core/tests/cmocka_cpp.h"

using namespace authtoken;

namespace
{

SecretKey secret_of(unsigned char fill)
{
    SecretKey s{};
    s.fill(fill);
    return s;
}

std::string digest(const std::string &key)
{
    Sha256Hex hex = token_digest_hex(key);
    return std::string(hex.data(), hex.size());
}

void keys_are_40_lowercase_hex(void **)
{
    const std::regex format("^[0-9a-f]{40}$");
    for (int i = 0; i < 100; i++) {
        assert_true(std::regex_match(generate_token_key(), format));
    }
}

void keys_do_not_repeat(void **)
{
    std::set<std::string> seen;
    for (int i = 0; i < 10000; i++) {
        assert_true(seen.insert(generate_token_key()).second);
    }
}

void sealing_round_trips(void **)
{
    TokenSealer sealer(secret_of(7));
    std::string key = generate_token_key();
    std::string sealed = sealer.seal(key, digest(key));
    assert_true(sealed.find(key) == std::string::npos);
    auto opened = sealer.unseal(sealed, digest(key));
    assert_true(opened.has_value());
    assert_string_equal(opened->c_str(), key.c_str());
}

// Schema version 2 stores the sealed key binary: a generated key (40
// lowercase hex digits) as the 20 bytes it spells, 49 bytes in all, which
// keeps the user hash inside hash-max-listpack-value.
void a_generated_key_seals_to_49_binary_bytes(void **)
{
    TokenSealer sealer(secret_of(7));
    std::string key = generate_token_key();
    std::string sealed = sealer.seal(key, digest(key));
    assert_int_equal(sealed.size(), 1 + 12 + 20 + 16);
    assert_int_equal(static_cast<unsigned char>(sealed[0]), 0x02);
}

// A key Django holds in another form (Token.key is any 40 characters)
// is sealed as it is, and opens as it was.
void another_key_seals_as_given(void **)
{
    TokenSealer sealer(secret_of(7));
    for (std::string key :
         {std::string("0123456789ABCDEF0123456789ABCDEF01234567"),
          std::string("short-key"), std::string(40, 'z')}) {
        std::string sealed = sealer.seal(key, digest(key));
        assert_int_equal(static_cast<unsigned char>(sealed[0]), 0x01);
        assert_int_equal(sealed.size(), 1 + 12 + key.size() + 16);
        auto opened = sealer.unseal(sealed, digest(key));
        assert_true(opened.has_value());
        assert_string_equal(opened->c_str(), key.c_str());
    }
}

// Made by schema version 1's TokenSealer (secret 32 x 0x07, nonce
// 00..0b) for the key below: what a database holds until it is migrated.
constexpr const char *kVersion1Key = "0123456789abcdef0123456789abcdef01234567";
constexpr const char *kVersion1Sealed =
    "v1:000102030405060708090a0b28b0db43293cef7e4f8b84fe813c099cd10d84bd2c57"
    "41062ef702d8edb30863ee5e74d1a3fa07cad61db52cd307728e257c82d55ceb44ea";

void a_version_1_value_still_opens(void **)
{
    TokenSealer sealer(secret_of(7));
    auto opened = sealer.unseal(kVersion1Sealed, digest(kVersion1Key));
    assert_true(opened.has_value());
    assert_string_equal(opened->c_str(), kVersion1Key);
    assert_false(sealer.unseal(kVersion1Sealed, digest("another")).has_value());
}

// authtokenctl migrate (redis/authtoken.lua, authtoken_migrate) rewrites
// "v1:" + hex as 0x01 followed by the same bytes; no secret needed.
void a_migrated_version_1_value_opens(void **)
{
    std::string hex = std::string(kVersion1Sealed).substr(3);
    std::string migrated(1, '\x01');
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        migrated.push_back(
            static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    }
    TokenSealer sealer(secret_of(7));
    auto opened = sealer.unseal(migrated, digest(kVersion1Key));
    assert_true(opened.has_value());
    assert_string_equal(opened->c_str(), kVersion1Key);
    // The format byte is bound to the value: read as a packed key, it fails.
    migrated[0] = '\x02';
    assert_false(sealer.unseal(migrated, digest(kVersion1Key)).has_value());
}

void sealing_uses_a_fresh_nonce(void **)
{
    TokenSealer sealer(secret_of(7));
    std::string key = generate_token_key();
    assert_true(sealer.seal(key, digest(key)) != sealer.seal(key, digest(key)));
}

void another_secret_cannot_open(void **)
{
    std::string key = generate_token_key();
    std::string sealed = TokenSealer(secret_of(7)).seal(key, digest(key));
    assert_false(
        TokenSealer(secret_of(8)).unseal(sealed, digest(key)).has_value());
}

void another_digest_cannot_open(void **)
{
    TokenSealer sealer(secret_of(7));
    std::string key = generate_token_key();
    std::string sealed = sealer.seal(key, digest(key));
    assert_false(
        sealer.unseal(sealed, digest(generate_token_key())).has_value());
}

void any_flipped_character_is_detected(void **)
{
    TokenSealer sealer(secret_of(7));
    std::string key = generate_token_key();
    std::string sealed = sealer.seal(key, digest(key));
    for (std::size_t i = 0; i < sealed.size(); i++) {
        for (int bit = 0; bit < 8; bit++) {
            std::string tampered = sealed;
            tampered[i] = static_cast<char>(tampered[i] ^ (1 << bit));
            assert_false(sealer.unseal(tampered, digest(key)).has_value());
        }
    }
}

void malformed_sealed_forms_are_refused(void **)
{
    TokenSealer sealer(secret_of(7));
    std::string d = digest("x");
    for (const char *bad :
         {"", "v1:", "v2:00", "v1:zz", "v1:0", "plain", "\x02", "\x01",
          "\x03"
          "ghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"}) {
        assert_false(sealer.unseal(bad, d).has_value());
    }
}

} // namespace

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keys_are_40_lowercase_hex),
        cmocka_unit_test(keys_do_not_repeat),
        cmocka_unit_test(sealing_round_trips),
        cmocka_unit_test(a_generated_key_seals_to_49_binary_bytes),
        cmocka_unit_test(another_key_seals_as_given),
        cmocka_unit_test(a_version_1_value_still_opens),
        cmocka_unit_test(a_migrated_version_1_value_opens),
        cmocka_unit_test(sealing_uses_a_fresh_nonce),
        cmocka_unit_test(another_secret_cannot_open),
        cmocka_unit_test(another_digest_cannot_open),
        cmocka_unit_test(any_flipped_character_is_detected),
        cmocka_unit_test(malformed_sealed_forms_are_refused),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
