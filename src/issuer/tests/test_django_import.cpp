// The dumpdata reader: the real fixture as Django wrote it, and malformed
// files refused with the position of the problem.
#include "issuer/django_import.h"

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

// cmocka last: its macros (fail, ...) clash with names in C++ headers.
#include "core/tests/cmocka_cpp.h"

using namespace authtoken;

namespace
{

std::string read_fixture()
{
    std::ifstream in(AUTHTOKEN_FIXTURES_DIR "/django-dumpdata.json");
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

const ImportedUser &by_name(const std::vector<ImportedUser> &users,
                            const char *name)
{
    for (const ImportedUser &u : users) {
        if (u.username == name) {
            return u;
        }
    }
    fail_msg("no user %s", name);
    return users.front();
}

void reads_the_fixture(void **)
{
    std::vector<ImportedUser> users = parse_django_dumpdata(read_fixture());
    assert_int_equal(users.size(), 7);
    const ImportedUser &admin = by_name(users, "admin");
    assert_int_equal(admin.uid, 1);
    assert_true(admin.is_superuser && admin.is_staff && admin.is_active);
    assert_string_equal(admin.token_key->c_str(),
                        "f18cf35e35f01bc02fa4789ff0137b8fbafebff7");
    assert_true(admin.password.rfind("pbkdf2_sha256$260000$", 0) == 0);
    assert_false(by_name(users, "frank").is_active);
    assert_false(by_name(users, "grace").token_key.has_value());
    assert_true(by_name(users, "erin").password.rfind("argon2$", 0) == 0);
    assert_string_equal(by_name(users, "dave").token_created.c_str(),
                        "2026-11-27T20:26:24.574Z");
}

void expect_error(const std::string &text, const char *position)
{
    try {
        parse_django_dumpdata(text);
        fail_msg("accepted: %s", text.c_str());
    } catch (const DumpdataError &e) {
        if (std::strstr(e.what(), position) == nullptr) {
            fail_msg("\"%s\" does not name %s", e.what(), position);
        }
    }
}

std::string user_json(const char *pk, const char *username, const char *active)
{
    return std::string(R"({"model":"auth.user","pk":)") + pk +
           R"(,"fields":{"password":"!x","username":)" + username +
           R"(,"is_active":)" + active +
           R"(,"is_staff":false,"is_superuser":false,"last_login":null}})";
}

void syntax_errors_name_line_and_column(void **)
{
    expect_error("[\n  {\"model\": \"auth.user\",\n   \"pk\": 1,,\n", "line 3");
    expect_error("", "line 1, column 1");
}

void wrong_values_name_a_json_pointer(void **)
{
    expect_error("{}", "at /:");
    expect_error("[1]", "at /0:");
    expect_error(std::string("[") + user_json("1", "\"a\"", "\"yes\"") + "]",
                 "at /0/fields/is_active");
    expect_error(std::string("[") + user_json("-1", "\"a\"", "true") + "]",
                 "at /0/pk");
    expect_error(std::string("[") + user_json("1", "\"\"", "true") + "]",
                 "at /0/fields/username");
    expect_error(std::string("[") + user_json("1", "\"a\"", "true") + "," +
                     user_json("2", "\"a\"", "true") + "]",
                 "at /1/fields/username");
    expect_error(R"([{"model":"auth.group","pk":1,"fields":{}}])",
                 "at /0/model");
    expect_error(
        std::string("[") + user_json("1", "\"a\"", "true") +
            R"(,{"model":"authtoken.token","pk":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","fields":{"user":9}}])",
        "at /1/fields/user");
    expect_error(
        std::string("[") + user_json("1", "\"a\"", "true") +
            R"(,{"model":"authtoken.token","pk":"has space","fields":{"user":1}}])",
        "at /1/pk");
    expect_error(
        std::string("[") + user_json("1", "\"a\"", "true") +
            R"(,{"model":"authtoken.token","pk":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","fields":{"user":1}})"
            R"(,{"model":"authtoken.token","pk":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","fields":{"user":1}}])",
        "at /2");
}

void a_number_too_large_for_a_double_names_its_position(void **)
{
    // nlohmann throws out_of_range, without a position, for these.
    expect_error("[1e999]", "line 1, column 2");
    expect_error("[\n  {\"pk\": -1e400}]", "line 2, column 10");
}

void lengths_are_counted_in_characters_as_django_does(void **)
{
    std::string cyrillic;
    for (int i = 0; i < 150; i++) {
        cyrillic += "\xd0\xb6"; // U+0436, two bytes
    }
    auto users = authtoken::parse_django_dumpdata(
        std::string("[") +
        user_json("1", ("\"" + cyrillic + "\"").c_str(), "true") + "]");
    assert_int_equal(users.size(), 1);
    expect_error(std::string("[") +
                     user_json("1", ("\"" + cyrillic + "x\"").c_str(), "true") +
                     "]",
                 "/0/fields/username");
}

void tokens_may_precede_their_users(void **)
{
    auto users = parse_django_dumpdata(
        std::string(
            R"([{"model":"authtoken.token","pk":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","fields":)"
            R"({"user":1,"created":"c"}},)") +
        user_json("1", "\"a\"", "true") + "]");
    assert_string_equal(users[0].token_key->c_str(),
                        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
}

std::string token_json(const std::string &key, int uid)
{
    return R"({"model":"authtoken.token","pk":")" + key +
           R"(","fields":{"user":)" + std::to_string(uid) +
           R"(,"created":"c"}})";
}

// CR/LF in a name reached the upstream as an injected header line: names
// with control characters or whitespace at either end are refused, all
// of them at once with their positions, unless escaping is asked for.
void unsafe_usernames_are_refused_with_their_positions(void **)
{
    const std::string file =
        "[" + user_json("1", R"("ok")", "true") + "," +
        user_json("2", R"("evil\r\nX-Auth-User: admin")", "true") + "," +
        user_json("3", R"(" padded")", "true") + "," +
        user_json("4", R"("tab\tin")", "true") + "," +
        user_json("5", R"("c1\u0085")", "true") + "," +
        user_json("6", R"("inner space")", "true") + "]";
    try {
        parse_django_dumpdata(file);
        fail_msg("accepted unsafe usernames");
    } catch (const DumpdataError &e) {
        assert_non_null(std::strstr(
            e.what(), "4 usernames with control characters or whitespace at "
                      "either end"));
        assert_non_null(
            std::strstr(e.what(), "at /1/fields/username, /2/fields/username, "
                                  "/3/fields/username, /4/fields/username"));
    }
    ImportOptions escape;
    escape.escape_unsafe_usernames = true;
    ImportNotes notes;
    auto users = parse_django_dumpdata(file, escape, &notes);
    assert_string_equal(users[1].username.c_str(),
                        "evil\\x0d\\x0aX-Auth-User: admin");
    assert_string_equal(users[2].username.c_str(), "\\x20padded");
    assert_string_equal(users[3].username.c_str(), "tab\\x09in");
    assert_string_equal(users[4].username.c_str(), "c1\\u0085");
    assert_string_equal(users[5].username.c_str(), "inner space");
    assert_int_equal(notes.escaped_usernames.size(), 4);
}

// Keys that are not 40 hex characters are refused, counted and placed;
// --allow-weak-keys takes them and says where they are.
void weak_token_keys_are_refused_with_count_and_positions(void **)
{
    const std::string file = "[" + user_json("1", R"("a")", "true") + "," +
                             user_json("2", R"("b")", "true") + "," +
                             user_json("3", R"("c")", "true") + "," +
                             token_json("1", 1) + "," +
                             token_json(std::string(40, 'A'), 2) + "," +
                             token_json(std::string(39, 'a') + "g", 3) + "]";
    try {
        parse_django_dumpdata(file);
        fail_msg("accepted weak keys");
    } catch (const DumpdataError &e) {
        assert_non_null(std::strstr(
            e.what(), "2 token keys that are not 40 hex characters"));
        assert_non_null(std::strstr(e.what(), "at /3/pk, /5/pk"));
    }
    ImportOptions allow;
    allow.allow_weak_keys = true;
    ImportNotes notes;
    auto users = parse_django_dumpdata(file, allow, &notes);
    assert_string_equal(users[0].token_key->c_str(), "1");
    assert_int_equal(notes.weak_keys.size(), 2);
    assert_string_equal(notes.weak_keys[1].c_str(), "/5/pk");
}

std::string user_with_password(const char *pk, const std::string &password)
{
    return std::string(R"({"model":"auth.user","pk":)") + pk +
           R"(,"fields":{"password":")" + password + R"(","username":"u)" + pk +
           R"(","is_active":true,"is_staff":false,"is_superuser":false}})";
}

// Plain-text passwords are counted (they cannot log in); argon2 hashes
// over the caps are refused at import, before any login runs them.
void passwords_are_classified_at_import(void **)
{
    ImportNotes notes;
    auto users = parse_django_dumpdata(
        "[" + user_with_password("1", "hunter2") + "," +
            user_with_password("2", "md5$salt$abc") + "," +
            user_with_password("3", "!unusable") + "]",
        {}, &notes);
    assert_int_equal(users.size(), 3);
    assert_int_equal(notes.passwords_in_no_hash_format.size(), 1);
    assert_string_equal(notes.passwords_in_no_hash_format[0].c_str(),
                        "/0/fields/password");
    assert_int_equal(notes.passwords_not_checkable.size(), 1);
    expect_error(
        "[" +
            user_with_password("1", "argon2$argon2id$v=19$m=1048576,t=64,p=64$"
                                    "c2FsdHNhbHQ$aGFzaGhhc2g") +
            "]",
        "1 password hashes asking for more work than the caps");
}

} // namespace

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_the_fixture),
        cmocka_unit_test(unsafe_usernames_are_refused_with_their_positions),
        cmocka_unit_test(weak_token_keys_are_refused_with_count_and_positions),
        cmocka_unit_test(passwords_are_classified_at_import),
        cmocka_unit_test(syntax_errors_name_line_and_column),
        cmocka_unit_test(wrong_values_name_a_json_pointer),
        cmocka_unit_test(tokens_may_precede_their_users),
        cmocka_unit_test(a_number_too_large_for_a_double_names_its_position),
        cmocka_unit_test(lengths_are_counted_in_characters_as_django_does),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
