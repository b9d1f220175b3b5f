// The module sends its HMGET pre-formatted; the bytes must be exactly what
// hiredis itself would send for that argv, or Redis would answer another
// command (or an error) for every lookup.
#include "cmocka_cpp.h"

#include "core/redis_keys.h"
#include "core/token_digest.h"

#include <hiredis/hiredis.h>

#include <string>
#include <vector>

namespace {

std::string hiredis_format(const std::vector<std::string> &args)
{
    std::vector<const char *> argv;
    std::vector<size_t> lens;
    for (const auto &a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
    }
    char *cmd = nullptr;
    int len = redisFormatCommandArgv(&cmd, static_cast<int>(args.size()),
                                     argv.data(), lens.data());
    assert_true(len > 0);
    std::string out(cmd, static_cast<std::size_t>(len));
    redisFreeCommand(cmd);
    return out;
}

std::string hmget_by_hiredis(const authtoken::Sha256Hex &digest)
{
    std::vector<std::string> args = {
        "HMGET", "authtoken:token:" + std::string(digest.data(), digest.size())};
    for (auto f : authtoken::keys::kTokenRecordFields) {
        args.emplace_back(f);
    }
    return hiredis_format(args);
}

void test_lookup_command_is_hiredis_formatting_of_hmget(void **)
{
    for (const char *key : {"", "abc", "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"}) {
        auto digest = authtoken::token_digest_hex(key);
        authtoken::keys::TokenRecordLookup lookup(digest);
        std::string expected = hmget_by_hiredis(digest);
        assert_int_equal(lookup.resp().size(), expected.size());
        assert_memory_equal(lookup.resp().data(), expected.data(),
                            expected.size());
    }
}

void test_lookup_commands_differ_only_in_the_digest(void **)
{
    auto a = authtoken::token_digest_hex("a");
    auto b = authtoken::token_digest_hex("b");
    authtoken::keys::TokenRecordLookup la(a), lb(b);
    std::string sa(la.resp()), sb(lb.resp());
    assert_int_equal(sa.size(), sb.size());
    std::size_t at = sa.find(std::string(a.data(), a.size()));
    assert_true(at != std::string::npos);
    assert_string_equal(sb.substr(at, b.size()).c_str(),
                        std::string(b.data(), b.size()).c_str());
    sa.replace(at, a.size(), std::string(b.data(), b.size()));
    assert_string_equal(sa.c_str(), sb.c_str());
}

} // namespace

int main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_command_is_hiredis_formatting_of_hmget),
        cmocka_unit_test(test_lookup_commands_differ_only_in_the_digest),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
