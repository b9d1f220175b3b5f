// PageNumberPagination's page numbers and links, and QueryDict.get(), as
// DRF 3.14 and Django 4.2 compute them (the expected strings are what
// rest_framework.utils.urls.replace_query_param / remove_query_param and
// Paginator.validate_number give for the same input).
#include "drf/form_parser.h"
#include "drf/pagination.h"

#include <optional>
#include <string>
#include <vector>

// Last: cmocka defines macros (fail) that clash with the standard headers.
#include "core/tests/cmocka_cpp.h"

namespace
{

using namespace authtoken;

std::vector<FormField> query(const char *text)
{
    return *parse_urlencoded_form(text, TextEncoding::utf8);
}

void test_query_get_answers_the_last_value_as_querydict(void **)
{
    std::vector<FormField> q = query("search=a&page=2&search=b+c&empty=");
    assert_true(query_get(q, "search") == std::optional<std::string>("b c"));
    assert_true(query_get(q, "empty") == std::optional<std::string>(""));
    assert_false(query_get(q, "nothing").has_value());
}

void test_quote_plus_keeps_unreserved_and_escapes_the_rest(void **)
{
    assert_string_equal(quote_plus("a-Z_0.~").c_str(), "a-Z_0.~");
    assert_string_equal(quote_plus("a b").c_str(), "a+b");
    assert_string_equal(quote_plus("a/b&c=d+e%").c_str(),
                        "a%2Fb%26c%3Dd%2Be%25");
    assert_string_equal(quote_plus("Zo\xc3\xab").c_str(), "Zo%C3%AB");
}

void test_page_link_replaces_page_and_sorts_parameters(void **)
{
    const char *base = "http://h/api-admin/users/";
    assert_string_equal(page_link(base, query(""), 2).c_str(),
                        "http://h/api-admin/users/?page=2");
    assert_string_equal(
        page_link(base, query("search=STAFF&page=1"), 2).c_str(),
        "http://h/api-admin/users/?page=2&search=STAFF");
    // parse_qs keeps blank values; doseq keeps every value of a name.
    assert_string_equal(page_link(base, query("z=1&a=x+y&z=2&b="), 3).c_str(),
                        "http://h/api-admin/users/?a=x+y&b=&page=3&z=1&z=2");
}

void test_page_link_without_a_page_drops_it(void **)
{
    const char *base = "http://h/api-admin/users/";
    assert_string_equal(page_link(base, query("page=2"), std::nullopt).c_str(),
                        "http://h/api-admin/users/");
    assert_string_equal(
        page_link(base, query("page=2&search=a"), std::nullopt).c_str(),
        "http://h/api-admin/users/?search=a");
}

void test_valid_page_follows_validate_number(void **)
{
    assert_true(valid_page("1", 3) == std::optional<std::size_t>(1));
    assert_true(valid_page(" 2 ", 3) == std::optional<std::size_t>(2));
    assert_true(valid_page("+3", 3) == std::optional<std::size_t>(3));
    assert_true(valid_page("003", 3) == std::optional<std::size_t>(3));
    assert_true(valid_page("last", 3) == std::optional<std::size_t>(3));
    for (const char *bad : {"0", "-1", "4", "", " ", "abc", "1.5", "2.0", "1e1",
                            "Last", "99999999999999999999999"}) {
        assert_false(valid_page(bad, 3).has_value());
    }
    // An empty list has one (empty) page.
    assert_true(valid_page("1", page_count(0, 100)) ==
                std::optional<std::size_t>(1));
    assert_false(valid_page("2", page_count(0, 100)).has_value());
}

void test_page_count_rounds_up_with_one_page_at_least(void **)
{
    assert_int_equal(page_count(0, 2), 1);
    assert_int_equal(page_count(2, 2), 1);
    assert_int_equal(page_count(3, 2), 2);
    assert_int_equal(page_count(5, 2), 3);
}

} // namespace

int main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_get_answers_the_last_value_as_querydict),
        cmocka_unit_test(test_quote_plus_keeps_unreserved_and_escapes_the_rest),
        cmocka_unit_test(test_page_link_replaces_page_and_sorts_parameters),
        cmocka_unit_test(test_page_link_without_a_page_drops_it),
        cmocka_unit_test(test_valid_page_follows_validate_number),
        cmocka_unit_test(test_page_count_rounds_up_with_one_page_at_least),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
