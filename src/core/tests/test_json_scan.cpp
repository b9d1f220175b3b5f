// core/json_scan.h: walking JSON text outside its string literals.
#include "cmocka_cpp.h"

#include "core/json_scan.h"

#include <string>
#include <string_view>

namespace
{

// Every index the walk visits, as a string of the bytes there.
std::string visited(std::string_view text)
{
    std::string out;
    authtoken::find_outside_json_strings(text, [&](std::size_t i) {
        out += text[i];
        return false;
    });
    return out;
}

void test_string_literals_are_skipped_with_their_escapes(void **)
{
    assert_string_equal(visited(R"({"a":1,"b\"[":[2]})").c_str(), "{:1,:[2]}");
    assert_string_equal(visited(R"(["\\",0])").c_str(), "[,0]");
    assert_string_equal(visited(R"(["\\\"]",0])").c_str(), "[,0]");
    assert_string_equal(visited("").c_str(), "");
}

void test_an_unterminated_string_hides_the_rest(void **)
{
    assert_string_equal(visited(R"([1,"abc]])").c_str(), "[1,");
    // A backslash as the last byte reads past nothing.
    assert_string_equal(visited("[\"\\").c_str(), "[");
}

void test_the_first_index_visit_accepts_is_returned(void **)
{
    std::string_view text = R"({"[":[[0]]})";
    auto bracket = [&](std::size_t i) { return text[i] == '['; };
    assert_int_equal(authtoken::find_outside_json_strings(text, bracket), 5);
    auto none = [](std::size_t) { return false; };
    assert_int_equal(authtoken::find_outside_json_strings(text, none),
                     text.size());
}

} // namespace

int main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_string_literals_are_skipped_with_their_escapes),
        cmocka_unit_test(test_an_unterminated_string_hides_the_rest),
        cmocka_unit_test(test_the_first_index_visit_accepts_is_returned),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
