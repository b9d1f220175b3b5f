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
    assert_true(sealed.rfind("v1:", 0) == 0);
    assert_true(sealed.find(key) == std::string::npos);
    auto opened = sealer.unseal(sealed, digest(key));
    assert_true(opened.has_value());
    assert_string_equal(opened->c_str(), key.c_str());
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
    for (std::size_t i = 3; i < sealed.size(); i++) {
        std::string tampered = sealed;
        tampered[i] = tampered[i] == '0' ? '1' : '0';
        assert_false(sealer.unseal(tampered, digest(key)).has_value());
    }
}

void malformed_sealed_forms_are_refused(void **)
{
    TokenSealer sealer(secret_of(7));
    std::string d = digest("x");
    for (const char *bad : {"", "v1:", "v2:00", "v1:zz", "v1:0", "plain"}) {
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
        cmocka_unit_test(sealing_uses_a_fresh_nonce),
        cmocka_unit_test(another_secret_cannot_open),
        cmocka_unit_test(another_digest_cannot_open),
        cmocka_unit_test(any_flipped_character_is_detected),
        cmocka_unit_test(malformed_sealed_forms_are_refused),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
