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
            R"(,{"model":"authtoken.token","pk":"k1","fields":{"user":9}}])",
        "at /1/fields/user");
    expect_error(
        std::string("[") + user_json("1", "\"a\"", "true") +
            R"(,{"model":"authtoken.token","pk":"has space","fields":{"user":1}}])",
        "at /1/pk");
    expect_error(
        std::string("[") + user_json("1", "\"a\"", "true") +
            R"(,{"model":"authtoken.token","pk":"k1","fields":{"user":1}})"
            R"(,{"model":"authtoken.token","pk":"k2","fields":{"user":1}}])",
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
        std::string("[") + user_json("1", ("\"" + cyrillic + "\"").c_str(),
                                     "true") +
        "]");
    assert_int_equal(users.size(), 1);
    expect_error(std::string("[") +
                     user_json("1", ("\"" + cyrillic + "x\"").c_str(), "true") +
                     "]",
                 "/0/fields/username");
}

void tokens_may_precede_their_users(void **)
{
    auto users = parse_django_dumpdata(
        std::string(R"([{"model":"authtoken.token","pk":"k1","fields":)"
                    R"({"user":1,"created":"c"}},)") +
        user_json("1", "\"a\"", "true") + "]");
    assert_string_equal(users[0].token_key->c_str(), "k1");
}

} // namespace

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_the_fixture),
        cmocka_unit_test(syntax_errors_name_line_and_column),
        cmocka_unit_test(wrong_values_name_a_json_pointer),
        cmocka_unit_test(tokens_may_precede_their_users),
        cmocka_unit_test(a_number_too_large_for_a_double_names_its_position),
        cmocka_unit_test(lengths_are_counted_in_characters_as_django_does),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
