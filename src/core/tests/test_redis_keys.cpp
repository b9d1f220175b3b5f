// Redis key names and commands as the parts spell them: the module's
// pre-formatted HMGET must be exactly what hiredis would send for that
// argv, and the Lua scripts may only spell names redis_keys.h spells.
#include "core/redis_keys.h"
#include "core/token_digest.h"

#include <hiredis/hiredis.h>

#include <dirent.h>

#include <fstream>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

// Last: cmocka's macros (fail, _fail) clash with names in <regex>.
#include "cmocka_cpp.h"

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

// The bytes redis/SCHEMA.md documents for the token "abc", written out:
// the test above takes its field list from redis_keys.h, so it cannot see
// a field dropped or renamed there.
void test_lookup_command_bytes_written_out(void **)
{
    authtoken::keys::TokenRecordLookup lookup(
        authtoken::token_digest_hex("abc"));
    const std::string expected =
        "*6\r\n$5\r\nHMGET\r\n"
        "$80\r\nauthtoken:token:"
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\r\n"
        "$3\r\nuid\r\n$4\r\nuser\r\n$6\r\nactive\r\n$7\r\nexpires\r\n";
    assert_int_equal(lookup.resp().size(), expected.size());
    assert_memory_equal(lookup.resp().data(), expected.data(), expected.size());
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

// The Lua scripts spell key names a second time (they derive keys from
// their KEYS); every 'authtoken:...' literal in them must be one of the
// names redis_keys.h spells, so that a rename cannot leave them behind.
void test_scripts_spell_only_the_key_names_of_redis_keys_h(void **)
{
    namespace k = authtoken::keys;
    const std::set<std::string> known = {std::string(k::kSchema),
                                         std::string(k::kTokenPrefix),
                                         std::string(k::kUserPrefix),
                                         std::string(k::kUsernamePrefix),
                                         std::string(k::kUsers),
                                         std::string(k::kNextUid),
                                         std::string(k::kThrottlePrefix),
                                         std::string(k::kRevocationChannel),
                                         std::string(k::kRevocationSequence)};
    const std::regex literal(R"(['"](authtoken:[^'"]*)['"])");
    std::unique_ptr<DIR, int (*)(DIR *)> dir(opendir(AUTHTOKEN_REDIS_DIR),
                                             closedir);
    assert_non_null(dir.get());
    int scripts = 0, literals = 0;
    while (dirent *e = readdir(dir.get())) {
        std::string name = e->d_name;
        if (name.size() < 4 || name.substr(name.size() - 4) != ".lua") {
            continue;
        }
        scripts++;
        std::ifstream in(std::string(AUTHTOKEN_REDIS_DIR) + "/" + name);
        std::stringstream text;
        text << in.rdbuf();
        std::string source = text.str();
        for (std::sregex_iterator m(source.begin(), source.end(), literal), end;
             m != end; ++m) {
            literals++;
            std::string found = (*m)[1];
            if (known.count(found) == 0) {
                fail_msg("%s spells \"%s\", which redis_keys.h does not",
                         name.c_str(), found.c_str());
            }
        }
    }
    assert_true(scripts >= 8);
    assert_true(literals > 0);
}

} // namespace

int main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_command_is_hiredis_formatting_of_hmget),
        cmocka_unit_test(test_lookup_command_bytes_written_out),
        cmocka_unit_test(test_lookup_commands_differ_only_in_the_digest),
        cmocka_unit_test(test_scripts_spell_only_the_key_names_of_redis_keys_h),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
