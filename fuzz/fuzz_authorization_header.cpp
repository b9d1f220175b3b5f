// authtoken::parse_authorization() against a slow, literal transcription of
// DRF's TokenAuthentication.authenticate():
//
//     auth = get_authorization_header(request).split()
//     if not auth or auth[0].lower() != self.keyword.lower().encode():
//         return None
//     if len(auth) == 1:  -> "No credentials provided."
//     elif len(auth) > 2: -> "Token string should not contain spaces."
//     try: token = auth[1].decode()
//     except UnicodeError: -> "Token string should not contain invalid
//     characters."
//
// with the module's extension of several keywords (any one may match).
// The first input byte picks 1..3 keywords; the rest is the header value.
// Invariant: same verdict, and for a key the same bytes, pointing into the
// value.
#include "core/authorization_header.h"
#include "core/utf8.h"
#include "fuzz_support.h"

#include <string>
#include <vector>

namespace
{

using authtoken::HeaderVerdict;

// bytes.split() with no argument splits on these six and drops empties.
std::vector<std::string> python_bytes_split(const std::string &value)
{
    const std::string whitespace = " \t\n\r\x0b\x0c";
    std::vector<std::string> parts;
    std::string current;
    for (char c : value) {
        if (whitespace.find(c) != std::string::npos) {
            if (!current.empty()) {
                parts.push_back(current);
            }
            current.clear();
        } else {
            current += c;
        }
    }
    if (!current.empty()) {
        parts.push_back(current);
    }
    return parts;
}

// bytes.lower(): ASCII letters only.
std::string python_bytes_lower(std::string s)
{
    for (char &c : s) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return s;
}

struct Reference {
    HeaderVerdict verdict;
    std::string key;
};

Reference drf_authenticate(const std::string &value,
                           const std::vector<std::string> &keywords)
{
    std::vector<std::string> auth = python_bytes_split(value);
    if (auth.empty()) {
        return {HeaderVerdict::not_provided, {}};
    }
    bool ours = false;
    for (const std::string &keyword : keywords) {
        if (python_bytes_lower(auth[0]) == python_bytes_lower(keyword)) {
            ours = true;
        }
    }
    if (!ours) {
        return {HeaderVerdict::not_provided, {}};
    }
    if (auth.size() == 1) {
        return {HeaderVerdict::no_credentials, {}};
    }
    if (auth.size() > 2) {
        return {HeaderVerdict::contains_spaces, {}};
    }
    if (!fuzz::decode_utf8(auth[1])) {
        return {HeaderVerdict::invalid_characters, {}};
    }
    return {HeaderVerdict::key_present, auth[1]};
}

const char *name(HeaderVerdict v)
{
    switch (v) {
    case HeaderVerdict::not_provided:
        return "not_provided";
    case HeaderVerdict::no_credentials:
        return "no_credentials";
    case HeaderVerdict::contains_spaces:
        return "contains_spaces";
    case HeaderVerdict::invalid_characters:
        return "invalid_characters";
    case HeaderVerdict::key_present:
        return "key_present";
    }
    return "?";
}

// Keywords an operator might configure (ASCII, no whitespace), in mixed
// case so that case folding on both sides is exercised.
const char *const kKeywords[] = {"Token", "Bearer", "token", "Api-Key",
                                 "KEY",   "x",      "JWT",   "Tok"};
constexpr std::size_t kKeywordCount = sizeof kKeywords / sizeof kKeywords[0];

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data,
                                      std::size_t size)
{
    fuzz::Input in(data, size);
    std::uint8_t pick = in.byte();
    std::size_t count = 1 + pick % 3;
    std::vector<std::string> keywords;
    for (std::size_t i = 0; i < count; i++) {
        keywords.push_back(kKeywords[(pick / 3 + i * 3) % kKeywordCount]);
    }
    // The header value is a copy of exactly its bytes, so that ASan sees any
    // read past its end.
    const std::string value = in.rest();

    std::vector<std::string_view> views(keywords.begin(), keywords.end());
    authtoken::ParsedAuthorization got =
        authtoken::parse_authorization(value, views.data(), views.size());
    Reference want = drf_authenticate(value, keywords);

    std::string detail = "value " + fuzz::repr(value) + "\nkeywords";
    for (const auto &k : keywords) {
        detail += " " + k;
    }
    detail += std::string("\nparse_authorization: ") + name(got.verdict) + " " +
              fuzz::repr(got.key) +
              "\nDRF reference:       " + name(want.verdict) + " " +
              fuzz::repr(want.key);

    FUZZ_CHECK(got.verdict == want.verdict, detail);
    if (want.verdict == HeaderVerdict::key_present) {
        FUZZ_CHECK(got.key == want.key, detail);
        FUZZ_CHECK(got.key.data() >= value.data() &&
                       got.key.data() + got.key.size() <=
                           value.data() + value.size(),
                   detail);
    } else {
        FUZZ_CHECK(got.key.empty(), detail);
    }
    // The exported UTF-8 check alone, on the whole value.
    FUZZ_CHECK(authtoken::is_valid_utf8(value) ==
                   fuzz::decode_utf8(value).has_value(),
               "is_valid_utf8 disagrees on " + fuzz::repr(value));
    return 0;
}
