#include "issuer/django_email.h"

#include "core/drf_messages.h"
#include "issuer/django_username.h"

#include <arpa/inet.h>

#include <algorithm>

namespace authtoken
{
namespace
{

bool ascii_alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z');
}

bool non_ascii(char c)
{
    return static_cast<unsigned char>(c) >= 0x80;
}

// user_regex's first branch: dot-atom, ^[atext]+(\.[atext]+)*\Z.
bool dot_atom(std::string_view s)
{
    static constexpr std::string_view kAtext = "-!#$%&'*+/=?^_`{}|~";
    if (s.empty() || s.front() == '.' || s.back() == '.') {
        return false;
    }
    for (std::size_t i = 0; i < s.size(); i++) {
        char c = s[i];
        if (c == '.') {
            if (s[i + 1] == '.') {
                return false;
            }
        } else if (!ascii_alnum(c) &&
                   kAtext.find(c) == std::string_view::npos) {
            return false;
        }
    }
    return true;
}

// user_regex's second branch: "([\001-\010\013\014\016-\037!#-\[\]-\177]
// | \\[\001-\011\013\014\016-\177])*"
bool quoted_string(std::string_view s)
{
    if (s.size() < 2 || s.front() != '"' || s.back() != '"') {
        return false;
    }
    s = s.substr(1, s.size() - 2);
    for (std::size_t i = 0; i < s.size(); i++) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c == '\\') {
            if (++i == s.size()) {
                return false;
            }
            auto e = static_cast<unsigned char>(s[i]);
            if (e == 0 || e == '\n' || e == '\r' || e > 0x7f) {
                return false;
            }
        } else if (c == 0 || c == '\t' || c == '\n' || c == '\r' || c == ' ' ||
                   c == '"' || c > 0x7f) {
            return false;
        }
    }
    return true;
}

// A label of domain_regex, [A-Z0-9]([A-Z0-9-]{0,61}[A-Z0-9])?, or (beyond
// Django, see the header) one with non-ASCII characters.
bool domain_label(std::string_view label)
{
    if (label.empty() || label.size() > 63 || label.front() == '-' ||
        label.back() == '-') {
        return false;
    }
    return std::all_of(label.begin(), label.end(), [](char c) {
        return ascii_alnum(c) || c == '-' || non_ascii(c);
    });
}

// domain_regex: ((label\.)+)[A-Z0-9-]{2,63}(?<!-)\Z, or the literal
// \[([A-F0-9:.]+)\]\Z holding an IPv4 or IPv6 address.
bool domain_part(std::string_view d)
{
    if (d.size() > 2 && d.front() == '[' && d.back() == ']') {
        std::string inner(d.substr(1, d.size() - 2));
        if (inner.find_first_not_of("0123456789abcdefABCDEF:.") !=
            std::string::npos) {
            return false;
        }
        unsigned char buf[16];
        return inet_pton(AF_INET, inner.c_str(), buf) == 1 ||
               inet_pton(AF_INET6, inner.c_str(), buf) == 1;
    }
    std::size_t dot = d.rfind('.');
    if (dot == std::string_view::npos) {
        return false;
    }
    std::string_view tld = d.substr(dot + 1);
    bool tld_ok = tld.size() >= 2 && tld.size() <= 63 && tld.back() != '-' &&
                  std::all_of(tld.begin(), tld.end(), [](char c) {
                      return ascii_alnum(c) || c == '-' || non_ascii(c);
                  });
    if (!tld_ok) {
        return false;
    }
    std::string_view rest = d.substr(0, dot);
    while (true) {
        std::size_t next = rest.find('.');
        if (!domain_label(rest.substr(0, next))) {
            return false;
        }
        if (next == std::string_view::npos) {
            return true;
        }
        rest.remove_prefix(next + 1);
    }
}

} // namespace

std::vector<std::string> validate_email(std::string_view email)
{
    std::vector<std::string> errors;
    if (email.empty()) {
        return errors;
    }
    std::size_t length = username_length(email); // characters, as Python
    std::size_t at = email.rfind('@');
    bool valid = at != std::string_view::npos && length <= 320;
    if (valid) {
        std::string_view user = email.substr(0, at);
        std::string_view domain = email.substr(at + 1);
        valid = (dot_atom(user) || quoted_string(user)) &&
                (domain == "localhost" || domain_part(domain));
    }
    if (!valid) {
        errors.emplace_back(drf::kInvalidEmail);
    }
    if (length > kEmailMaxLength) {
        errors.push_back(drf::max_length_message(kEmailMaxLength, length));
    }
    return errors;
}

} // namespace authtoken
