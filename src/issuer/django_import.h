// Reading `manage.py dumpdata auth.user authtoken.token` output. The whole
// file is validated before anything is written, and every problem is
// reported with its place: line and column for a syntax error, a JSON
// Pointer (RFC 6901, e.g. /3/fields/is_active) for a value that is wrong.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace authtoken
{

struct ImportedUser {
    std::uint64_t uid = 0; // Django's pk, kept
    std::string username;
    std::string password; // Django's encoded form, imported as it is
    bool is_active = true;
    bool is_staff = false;
    bool is_superuser = false;
    std::string email;
    std::string date_joined;
    std::string last_login; // "" when null
    std::optional<std::string> token_key;
    std::string token_created;
};

class DumpdataError : public std::runtime_error
{
  public:
    using std::runtime_error::runtime_error;
};

// Throws DumpdataError("<position>: <problem>"). Objects of other models
// are refused rather than skipped: a file with them is not what we were
// asked to import.
std::vector<ImportedUser> parse_django_dumpdata(std::string_view text);

} // namespace authtoken
