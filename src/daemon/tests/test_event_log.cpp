// A user name as the daemon's log lines show it (log::quoted_username): one
// short line, and a quoted field the name cannot end or forge.
#include "daemon/event_log.h"

#include <string>

// cmocka last: its macros (fail, ...) clash with names in C++ headers.
#include "core/tests/cmocka_cpp.h"

using namespace authtoken;

namespace
{

void quoted_username_keeps_a_plain_name(void **)
{
    assert_string_equal(log::quoted_username("alice").c_str(), "\"alice\"");
    assert_string_equal(log::quoted_username("").c_str(), "\"\"");
    // UTF-8 bytes pass as they are.
    assert_string_equal(log::quoted_username("j\xc3\xb6rg").c_str(),
                        "\"j\xc3\xb6rg\"");
}

void quoted_username_replaces_control_bytes_and_quotes(void **)
{
    // Split after each hex escape, so that it ends before the next letter.
    const std::string controls =
        std::string("a\nb\rc\td\x1f") + "e\x7f" + "f\"g";
    assert_string_equal(log::quoted_username(controls).c_str(),
                        "\"a?b?c?d?e?f?g\"");
    assert_string_equal(log::quoted_username(std::string("a\0b", 3)).c_str(),
                        "\"a?b\"");
}

void quoted_username_keeps_the_first_64_bytes(void **)
{
    assert_string_equal(
        log::quoted_username(std::string(64, 'x') + "tail").c_str(),
        ("\"" + std::string(64, 'x') + "\"").c_str());
}

} // namespace

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quoted_username_keeps_a_plain_name),
        cmocka_unit_test(quoted_username_replaces_control_bytes_and_quotes),
        cmocka_unit_test(quoted_username_keeps_the_first_64_bytes),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
