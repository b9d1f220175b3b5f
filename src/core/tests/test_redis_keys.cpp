// Redis key names and commands as the parts spell them: the module's
// pre-formatted HMGET must be exactly what hiredis would send for that
// argv, and redis/authtoken.lua spells exactly the names redis_keys.h
// spells.
#include "core/redis_keys.h"
#include "core/token_digest.h"

#include <hiredis/hiredis.h>

#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

// Last: cmocka's macros (fail, _fail) clash with names in <regex>.
#include "cmocka_cpp.h"

namespace
{

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

std::string hmget_by_hiredis(const std::string &key)
{
    std::vector<std::string> args = {"HMGET", key};
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
        "$59\r\nauthtoken:token:"
        "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0\r\n"
        "$3\r\nuid\r\n$4\r\nuser\r\n$6\r\nactive\r\n$7\r\nexpires\r\n";
    assert_int_equal(lookup.resp().size(), expected.size());
    assert_memory_equal(lookup.resp().data(), expected.data(), expected.size());

    // While the schema is not 3 the module also asks the hex name.
    authtoken::keys::LegacyTokenRecordLookup legacy(
        authtoken::token_digest_hex("abc"));
    const std::string hex_expected =
        "*6\r\n$5\r\nHMGET\r\n"
        "$80\r\nauthtoken:token:"
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\r\n"
        "$3\r\nuid\r\n$4\r\nuser\r\n$6\r\nactive\r\n$7\r\nexpires\r\n";
    assert_int_equal(legacy.resp().size(), hex_expected.size());
    assert_memory_equal(legacy.resp().data(), hex_expected.data(),
                        hex_expected.size());
}

// RFC 4648 section 10's test vectors, in the URL-safe alphabet without
// padding, plus bytes that use '-' and '_' (62 and 63).
void test_base64url_rfc4648_vectors(void **)
{
    namespace k = authtoken::keys;
    const std::pair<std::string, std::string> vectors[] = {
        {"", ""},
        {"f", "Zg"},
        {"fo", "Zm8"},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg"},
        {"fooba", "Zm9vYmE"},
        {"foobar", "Zm9vYmFy"},
        {"\xfb\xff", "-_8"},
        {"\xff\xff\xff", "____"},
    };
    for (const auto &[in, out] : vectors) {
        assert_string_equal(k::base64url(in).c_str(), out.c_str());
    }
}

// Known digests: the key of the token and its hex digest's decoding back
// (python3 -c 'base64.urlsafe_b64encode(hashlib.sha256(k).digest())').
void test_token_record_key_of_known_digests(void **)
{
    namespace k = authtoken::keys;
    const std::pair<const char *, const char *> known[] = {
        {"", "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"},
        {"abc", "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"},
        {"9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b",
         "XMHpETu6pwQMTg--gOpqp0PjSt04DFlqvl_lhOzog-w"},
    };
    for (const auto &[token, b64] : known) {
        auto digest = authtoken::token_digest_hex(token);
        std::string hex(digest.data(), digest.size());
        assert_string_equal(k::token_record_key(hex).c_str(),
                            ("authtoken:token:" + std::string(b64)).c_str());
        k::TokenRecordKey key(digest);
        assert_string_equal(std::string(key.view()).c_str(),
                            ("authtoken:token:" + std::string(b64)).c_str());
        authtoken::Sha256Hex back{};
        assert_true(k::digest_hex_of_base64url(b64, back));
        assert_memory_equal(back.data(), digest.data(), back.size());
    }
    authtoken::Sha256Hex out{};
    // Not 43 characters, not the alphabet, or stray bits after the 256th.
    assert_false(k::digest_hex_of_base64url("abc", out));
    assert_false(k::digest_hex_of_base64url(
        "47DEQpj8HBSa+/TImW-5JCeuQeRkm5NMpJWZG3hSuFU", out));
    assert_false(k::digest_hex_of_base64url(
        "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFV", out));
}

void test_lookup_command_is_hiredis_formatting_of_hmget(void **)
{
    for (const char *key :
         {"", "abc", "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"}) {
        auto digest = authtoken::token_digest_hex(key);
        std::string hex(digest.data(), digest.size());
        authtoken::keys::TokenRecordLookup lookup(digest);
        std::string expected =
            hmget_by_hiredis(authtoken::keys::token_record_key(hex));
        assert_int_equal(lookup.resp().size(), expected.size());
        assert_memory_equal(lookup.resp().data(), expected.data(),
                            expected.size());
        authtoken::keys::LegacyTokenRecordLookup legacy(digest);
        expected =
            hmget_by_hiredis(authtoken::keys::legacy_token_record_key(hex));
        assert_int_equal(legacy.resp().size(), expected.size());
        assert_memory_equal(legacy.resp().data(), expected.data(),
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
    std::string ka =
        authtoken::keys::token_record_key(std::string(a.data(), a.size()));
    std::string kb =
        authtoken::keys::token_record_key(std::string(b.data(), b.size()));
    std::size_t at = sa.find(ka);
    assert_true(at != std::string::npos);
    assert_string_equal(sb.substr(at, kb.size()).c_str(), kb.c_str());
    sa.replace(at, ka.size(), kb);
    assert_string_equal(sa.c_str(), sb.c_str());
}

std::string read_library()
{
    std::ifstream in(std::string(AUTHTOKEN_REDIS_DIR) + "/authtoken.lua");
    assert_true(in.good());
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// redis/authtoken.lua spells the key names a second time, for Lua, in one
// table (KEY): it must hold exactly the names redis_keys.h spells, each
// under its own name, so that neither side can change alone.
void test_library_key_table_is_redis_keys_h(void **)
{
    namespace k = authtoken::keys;
    const std::map<std::string, std::string> expected = {
        {"schema", std::string(k::kSchema)},
        {"token", std::string(k::kTokenPrefix)},
        {"user", std::string(k::kUserPrefix)},
        {"username", std::string(k::kUsernamePrefix)},
        {"users", std::string(k::kUsers)},
        {"next_uid", std::string(k::kNextUid)},
        {"throttle", std::string(k::kThrottlePrefix)},
        {"user_tokens", std::string(k::kUserTokensPrefix)},
        {"revocations", std::string(k::kRevocationChannel)},
        {"revocation_seq", std::string(k::kRevocationSequence)},
        {"directory_id", std::string(k::kDirectoryId)},
        {"outbox", std::string(k::kOutbox)},
        {"outbox_seq", std::string(k::kOutboxSequence)},
        {"outbox_acked", std::string(k::kOutboxAcked)},
        {"directory", std::string(k::kDirectory)},
        {"heartbeat", std::string(k::kHeartbeat)}};
    std::string source = read_library();
    std::size_t begin = source.find("\nlocal KEY = {\n");
    assert_true(begin != std::string::npos);
    std::size_t end = source.find("\n}\n", begin);
    assert_true(end != std::string::npos);
    std::string table = source.substr(begin, end - begin);
    const std::regex entry(R"(^  ([a-z_]+) = '([^']*)',$)");
    std::map<std::string, std::string> found;
    std::istringstream lines(table.substr(table.find('{') + 2));
    for (std::string line; std::getline(lines, line);) {
        std::smatch m;
        if (!std::regex_match(line, m, entry)) {
            fail_msg("authtoken.lua: not a KEY entry: \"%s\"", line.c_str());
        }
        found[m[1]] = m[2];
    }
    for (const auto &[name, value] : expected) {
        auto it = found.find(name);
        if (it == found.end()) {
            fail_msg("authtoken.lua: KEY.%s missing (redis_keys.h: \"%s\")",
                     name.c_str(), value.c_str());
        }
        if (it->second != value) {
            fail_msg("authtoken.lua: KEY.%s is \"%s\", redis_keys.h \"%s\"",
                     name.c_str(), it->second.c_str(), value.c_str());
        }
    }
    for (const auto &[name, value] : found) {
        if (expected.count(name) == 0) {
            fail_msg("authtoken.lua: KEY.%s (\"%s\") is not in redis_keys.h",
                     name.c_str(), value.c_str());
        }
    }

    // Outside the table no key name is spelled: every other literal
    // 'authtoken:...' would be a second spelling.
    std::string rest = source.substr(0, begin) + source.substr(end);
    const std::regex literal(R"(['"](authtoken:[^'"]*)['"])");
    std::smatch m;
    if (std::regex_search(rest, m, literal)) {
        fail_msg("authtoken.lua spells \"%s\" outside its KEY table",
                 m[1].str().c_str());
    }
}

// The bound on a user's token set, spelled once more for Lua.
void test_library_token_bound_is_redis_keys_h(void **)
{
    std::string source = read_library();
    std::string line = "\nlocal MAX_TOKENS_PER_USER = " +
                       std::to_string(authtoken::keys::kMaxTokensPerUser) +
                       "\n";
    assert_true(source.find(line) != std::string::npos);
}

void test_library_schema_version_is_redis_keys_h(void **)
{
    std::string source = read_library();
    std::string line = "\nlocal SCHEMA_VERSION = '" +
                       std::to_string(authtoken::keys::kSchemaVersion) + "'\n";
    assert_true(source.find(line) != std::string::npos);
    const std::regex any(R"(\nlocal SCHEMA_VERSION = )");
    auto n =
        std::distance(std::sregex_iterator(source.begin(), source.end(), any),
                      std::sregex_iterator());
    assert_int_equal(n, 1);
}

} // namespace

int main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_command_is_hiredis_formatting_of_hmget),
        cmocka_unit_test(test_lookup_command_bytes_written_out),
        cmocka_unit_test(test_lookup_commands_differ_only_in_the_digest),
        cmocka_unit_test(test_base64url_rfc4648_vectors),
        cmocka_unit_test(test_token_record_key_of_known_digests),
        cmocka_unit_test(test_library_key_table_is_redis_keys_h),
        cmocka_unit_test(test_library_schema_version_is_redis_keys_h),
        cmocka_unit_test(test_library_token_bound_is_redis_keys_h),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
