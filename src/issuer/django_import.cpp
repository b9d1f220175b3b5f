#include "issuer/django_import.h"

#include "core/json_scan.h"
#include "issuer/django_username.h"
#include "issuer/password_hasher.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <map>
#include <set>

namespace authtoken
{
namespace
{

using nlohmann::json;

// Django's auth.User.username max_length, and authtoken.Token.key's.
constexpr std::size_t kMaxUsername = 150;
constexpr std::size_t kMaxTokenKey = 40;

[[noreturn]] void fail(const std::string &pointer, const std::string &what)
{
    throw DumpdataError("at " + (pointer.empty() ? "/" : pointer) + ": " +
                        what);
}

std::string line_and_column(std::string_view text, std::size_t byte)
{
    std::size_t line = 1, column = 1;
    for (std::size_t i = 0; i + 1 < byte && i < text.size(); i++) {
        if (text[i] == '\n') {
            line++;
            column = 1;
        } else {
            column++;
        }
    }
    return "line " + std::to_string(line) + ", column " +
           std::to_string(column);
}

const json &member(const json &object, const std::string &pointer,
                   const char *name)
{
    auto it = object.find(name);
    if (it == object.end()) {
        fail(pointer, std::string("missing \"") + name + "\"");
    }
    return *it;
}

std::string string_member(const json &object, const std::string &pointer,
                          const char *name)
{
    const json &value = member(object, pointer, name);
    if (!value.is_string()) {
        fail(pointer + "/" + name, "expected a string");
    }
    return value.get<std::string>();
}

// A string, or "" for null or absence (Django writes null for last_login).
std::string optional_string(const json &object, const std::string &pointer,
                            const char *name)
{
    auto it = object.find(name);
    if (it == object.end() || it->is_null()) {
        return {};
    }
    if (!it->is_string()) {
        fail(pointer + "/" + name, "expected a string or null");
    }
    return it->get<std::string>();
}

bool bool_member(const json &object, const std::string &pointer,
                 const char *name)
{
    const json &value = member(object, pointer, name);
    if (!value.is_boolean()) {
        fail(pointer + "/" + name, "expected true or false");
    }
    return value.get<bool>();
}

std::uint64_t uid_value(const json &value, const std::string &pointer)
{
    if (!value.is_number_unsigned() || value.get<std::uint64_t>() == 0 ||
        value.get<std::uint64_t>() > (1ULL << 53)) {
        fail(pointer, "expected a positive integer user id");
    }
    return value.get<std::uint64_t>();
}

// DRF's Token.generate_key(): binascii.hexlify(os.urandom(20)).
bool is_drf_key(std::string_view key)
{
    return key.size() == 40 &&
           key.find_first_not_of("0123456789abcdefABCDEF") ==
               std::string_view::npos;
}

// "N <what>: at /1/pk, /5/pk, ... (and M more)".
std::string positions(const std::vector<std::string> &pointers,
                      const std::string &what)
{
    constexpr std::size_t kShown = 10;
    std::string text = std::to_string(pointers.size()) + " " + what + ": at ";
    for (std::size_t i = 0; i < pointers.size() && i < kShown; i++) {
        text += (i > 0 ? ", " : "") + pointers[i];
    }
    if (pointers.size() > kShown) {
        text += " (and " + std::to_string(pointers.size() - kShown) + " more)";
    }
    return text;
}

// What was found in the file that the options refuse, or that the
// operator should hear about.
struct Findings {
    std::vector<std::string> unsafe_usernames;
    std::vector<std::string> weak_keys;
    std::vector<std::string> over_work_bounds;
    ImportNotes notes;
};

bool has_control_or_space(std::string_view s)
{
    for (unsigned char c : s) {
        if (c <= 0x20 || c == 0x7f) {
            return true;
        }
    }
    return false;
}

ImportedUser read_user(const json &object, const std::string &pointer,
                       const ImportOptions &options, Findings &found)
{
    ImportedUser user;
    user.uid = uid_value(member(object, pointer, "pk"), pointer + "/pk");
    const json &fields = member(object, pointer, "fields");
    std::string fp = pointer + "/fields";
    if (!fields.is_object()) {
        fail(fp, "expected an object");
    }
    user.username = string_member(fields, fp, "username");
    // Django counts characters, not bytes (max_length=150).
    if (user.username.empty() ||
        username_length(user.username) > kMaxUsername) {
        fail(fp + "/username", "expected 1 to 150 characters");
    }
    if (is_unsafe_username(user.username)) {
        if (options.escape_unsafe_usernames) {
            user.username = escape_unsafe_username(user.username);
            found.notes.escaped_usernames.push_back(fp + "/username");
        } else {
            found.unsafe_usernames.push_back(fp + "/username");
        }
    }
    user.password = string_member(fields, fp, "password");
    switch (passwords::classify_password(user.password)) {
    case passwords::PasswordFormat::over_work_bounds:
        found.over_work_bounds.push_back(fp + "/password");
        break;
    case passwords::PasswordFormat::unknown_format:
        found.notes.passwords_in_no_hash_format.push_back(fp + "/password");
        break;
    case passwords::PasswordFormat::unsupported:
    case passwords::PasswordFormat::malformed:
        found.notes.passwords_not_checkable.push_back(fp + "/password");
        break;
    default:
        break;
    }
    user.is_active = bool_member(fields, fp, "is_active");
    user.is_staff = bool_member(fields, fp, "is_staff");
    user.is_superuser = bool_member(fields, fp, "is_superuser");
    user.email = optional_string(fields, fp, "email");
    user.date_joined = optional_string(fields, fp, "date_joined");
    user.last_login = optional_string(fields, fp, "last_login");
    return user;
}

struct ImportedToken {
    std::string key;
    std::uint64_t uid;
    std::string created;
    std::string pointer;
};

ImportedToken read_token(const json &object, const std::string &pointer)
{
    ImportedToken token;
    token.pointer = pointer;
    const json &pk = member(object, pointer, "pk");
    if (!pk.is_string()) {
        fail(pointer + "/pk", "expected the token key as a string");
    }
    token.key = pk.get<std::string>();
    if (token.key.empty() || username_length(token.key) > kMaxTokenKey ||
        has_control_or_space(token.key)) {
        fail(pointer + "/pk",
             "expected a key of 1 to 40 characters without spaces");
    }
    const json &fields = member(object, pointer, "fields");
    if (!fields.is_object()) {
        fail(pointer + "/fields", "expected an object");
    }
    token.uid = uid_value(member(fields, pointer + "/fields", "user"),
                          pointer + "/fields/user");
    token.created = optional_string(fields, pointer + "/fields", "created");
    return token;
}

// nlohmann reports a number too large for a double without a position;
// find the first such number outside strings, as Python's error would.
std::size_t find_number_overflow(std::string_view text)
{
    std::size_t number_end = 0; // past the number last looked at
    std::size_t at = find_outside_json_strings(text, [&](std::size_t i) {
        char c = text[i];
        if (i < number_end || (c != '-' && (c < '0' || c > '9'))) {
            return false;
        }
        number_end = i;
        while (number_end < text.size() &&
               std::string_view("0123456789+-.eE").find(text[number_end]) !=
                   std::string_view::npos) {
            number_end++;
        }
        std::string number(text.substr(i, number_end - i));
        return std::isinf(std::strtod(number.c_str(), nullptr)) != 0;
    });
    return at == text.size() ? 0 : at;
}

json parse_json(std::string_view text)
{
    try {
        return json::parse(text.begin(), text.end());
    } catch (const json::out_of_range &) {
        throw DumpdataError(
            line_and_column(text, find_number_overflow(text) + 1) +
            ": number too large");
    } catch (const json::parse_error &e) {
        // e.what() is "[json.exception.parse_error.101] parse error at
        // line 3, column 5: ..."; keep the part after the position.
        std::string what = e.what();
        std::size_t colon = what.find(": ");
        std::string detail =
            colon == std::string::npos ? what : what.substr(colon + 2);
        throw DumpdataError(line_and_column(text, e.byte) + ": " + detail);
    }
}

} // namespace

std::vector<ImportedUser> parse_django_dumpdata(std::string_view text,
                                                const ImportOptions &options,
                                                ImportNotes *notes)
{
    Findings found;
    json document = parse_json(text);
    if (!document.is_array()) {
        fail("", "expected an array of objects, as dumpdata writes");
    }

    std::vector<ImportedUser> users;
    std::map<std::uint64_t, std::size_t> by_uid;
    std::set<std::string> usernames;
    std::vector<ImportedToken> tokens;

    for (std::size_t i = 0; i < document.size(); i++) {
        const json &object = document[i];
        std::string pointer = "/" + std::to_string(i);
        if (!object.is_object()) {
            fail(pointer, "expected an object");
        }
        std::string model = string_member(object, pointer, "model");
        if (model == "auth.user") {
            ImportedUser user = read_user(object, pointer, options, found);
            if (by_uid.count(user.uid) != 0) {
                fail(pointer + "/pk",
                     "duplicate user id " + std::to_string(user.uid));
            }
            if (!usernames.insert(user.username).second) {
                fail(pointer + "/fields/username",
                     "duplicate username \"" + user.username + "\"");
            }
            by_uid[user.uid] = users.size();
            users.push_back(std::move(user));
        } else if (model == "authtoken.token") {
            tokens.push_back(read_token(object, pointer));
            if (!is_drf_key(tokens.back().key)) {
                (options.allow_weak_keys ? found.notes.weak_keys
                                         : found.weak_keys)
                    .push_back(pointer + "/pk");
            }
        } else {
            fail(pointer + "/model",
                 "expected \"auth.user\" or \"authtoken.token\", got \"" +
                     model + "\"");
        }
    }

    std::vector<std::string> refusals;
    if (!found.unsafe_usernames.empty()) {
        refusals.push_back(
            positions(found.unsafe_usernames,
                      "usernames with control characters or whitespace at "
                      "either end (--escape-unsafe-usernames imports them "
                      "escaped)"));
    }
    if (!found.weak_keys.empty()) {
        refusals.push_back(positions(
            found.weak_keys, "token keys that are not 40 hex characters "
                             "(--allow-weak-keys imports them anyway)"));
    }
    if (!found.over_work_bounds.empty()) {
        refusals.push_back(positions(
            found.over_work_bounds,
            "password hashes asking for more work than the caps (argon2 "
            "m <= 262144, t <= 16, p <= 16; bcrypt cost <= 16; pbkdf2 "
            "<= 10000000 iterations)"));
    }
    if (!refusals.empty()) {
        std::string text = "refused ";
        for (std::size_t i = 0; i < refusals.size(); i++) {
            text += (i > 0 ? "; " : "") + refusals[i];
        }
        throw DumpdataError(text);
    }

    // Tokens may come before their users in the file: match them last.
    std::set<std::string> keys;
    for (const ImportedToken &token : tokens) {
        auto it = by_uid.find(token.uid);
        if (it == by_uid.end()) {
            fail(token.pointer + "/fields/user", "no auth.user with pk " +
                                                     std::to_string(token.uid) +
                                                     " in this file");
        }
        ImportedUser &user = users[it->second];
        if (user.token_key) {
            fail(token.pointer,
                 "a second token for user \"" + user.username + "\"");
        }
        if (!keys.insert(token.key).second) {
            fail(token.pointer + "/pk", "duplicate token key");
        }
        user.token_key = token.key;
        user.token_created = token.created;
    }
    if (notes != nullptr) {
        *notes = std::move(found.notes);
    }
    return users;
}

} // namespace authtoken
