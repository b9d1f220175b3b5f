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

// What an import may accept beyond the safe default.
struct ImportOptions {
    // Usernames with control characters, or whitespace at either end
    // (is_unsafe_username()), are refused by default; with this they are
    // imported escaped (escape_unsafe_username()): "a\nb" becomes the
    // six characters a\x0ab, which is what logs in and goes upstream.
    bool escape_unsafe_usernames = false;
    // Token keys that are not 40 hex characters (what DRF's
    // Token.generate_key() writes) are refused by default: a key such as
    // "1" is guessed at once. With this they are imported as they are.
    bool allow_weak_keys = false;
};

// What the import should tell the operator, each as the JSON Pointers of
// the records concerned.
struct ImportNotes {
    std::vector<std::string> escaped_usernames; // with escape_unsafe_usernames
    std::vector<std::string> weak_keys;         // with allow_weak_keys
    // Passwords in no hash format Django knows: plain text, most likely.
    // Imported as they are; as in Django, such a user cannot log in until
    // a password is set (changepassword).
    std::vector<std::string> passwords_in_no_hash_format;
    // Hashes of Django hashers this issuer does not check (md5, sha1,
    // scrypt, crypt, unsalted_*), or malformed ones: cannot log in either.
    std::vector<std::string> passwords_not_checkable;
};

// Throws DumpdataError("<position>: <problem>"). Objects of other models
// are refused rather than skipped: a file with them is not what we were
// asked to import. Unsafe usernames, weak token keys and argon2 hashes
// over the work caps (passwords::kMaxArgon2*) are all found first and then
// refused together, with how many and where.
std::vector<ImportedUser>
parse_django_dumpdata(std::string_view text, const ImportOptions &options = {},
                      ImportNotes *notes = nullptr);

} // namespace authtoken
