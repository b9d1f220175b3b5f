// authtoken::parse_obtain_request(content_type, body): DRF's request.data
// for POST /api-token-auth/ and AuthTokenSerializer's field rules.
//
// The first input byte chooses a mode.
//
// Raw mode: a Content-Type (from a list of the supported media types and
// their variants, or the input's first line as it is) and the rest of the
// input as the body. Invariants on every answer:
//   - either credentials with status 0 and no body, or no credentials with
//     status 400/415 and a body that is a JSON object of DRF's shape
//     ({"detail": str} or field name -> non-empty list of str);
//   - credentials are valid UTF-8, non-empty, without NUL, and the username
//     has no leading or trailing whitespace in str.strip()'s sense.
//
// Round-trip modes (form, multipart, JSON): two strings from the input are
// made valid UTF-8 and encoded by this file into a well-formed body of that
// type, in one of several legal spellings (escapes, part order, duplicates
// before the real value, base64 parts, extra fields). The answer must be
// exactly DRF's: the username stripped, the password as sent, or the
// blank/NUL errors DRF gives for them.
#include "drf/obtain_request.h"
#include "fuzz_support.h"

#include <nlohmann/json.hpp>

#include <set>

namespace
{

using fuzz::Input;

// str.isspace() (Python 3.11): bidirectional class WS, B or S, or
// category Zs. Written from that definition, not from our whitespace code.
bool is_python_space(char32_t c)
{
    static const char32_t kSpaces[] = {
        0x09,   0x0a,   0x0b,   0x0c,   0x0d,   0x1c,   0x1d,   0x1e,
        0x1f,   0x20,   0x85,   0xa0,   0x1680, 0x2000, 0x2001, 0x2002,
        0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a,
        0x2028, 0x2029, 0x202f, 0x205f, 0x3000};
    for (char32_t s : kSpaces) {
        if (c == s) {
            return true;
        }
    }
    return false;
}

std::vector<char32_t> python_strip(std::vector<char32_t> text)
{
    while (!text.empty() && is_python_space(text.back())) {
        text.pop_back();
    }
    std::size_t begin = 0;
    while (begin < text.size() && is_python_space(text[begin])) {
        begin++;
    }
    return {text.begin() + static_cast<std::ptrdiff_t>(begin), text.end()};
}

bool has_nul(const std::vector<char32_t> &text)
{
    for (char32_t c : text) {
        if (c == 0) {
            return true;
        }
    }
    return false;
}

std::string describe(std::string_view content_type, std::string_view body,
                     const authtoken::ObtainParseResult &r)
{
    std::string out = "content-type " + fuzz::repr(content_type) + "\nbody " +
                      fuzz::repr(body) + "\nstatus " +
                      std::to_string(r.status) + " body " + fuzz::repr(r.body);
    if (r.credentials) {
        out += "\nusername " + fuzz::repr(r.credentials->username) +
               "\npassword " + fuzz::repr(r.credentials->password);
    }
    return out;
}

// The invariants every answer keeps, whatever the input.
void check_answer_shape(std::string_view content_type, std::string_view body,
                        const authtoken::ObtainParseResult &r)
{
    const std::string d = describe(content_type, body, r);
    if (r.credentials) {
        FUZZ_CHECK(r.status == 0 && r.body.empty(), d);
        const std::string &user = r.credentials->username;
        const std::string &pass = r.credentials->password;
        auto user_text = fuzz::decode_utf8(user);
        auto pass_text = fuzz::decode_utf8(pass);
        FUZZ_CHECK(user_text && pass_text, d);
        FUZZ_CHECK(!user_text->empty() && !pass_text->empty(), d);
        FUZZ_CHECK(!is_python_space(user_text->front()) &&
                       !is_python_space(user_text->back()),
                   d);
        FUZZ_CHECK(!has_nul(*user_text) && !has_nul(*pass_text), d);
        return;
    }
    FUZZ_CHECK(r.status == 400 || r.status == 415, d);
    nlohmann::json parsed = nlohmann::json::parse(r.body, nullptr, false);
    FUZZ_CHECK(!parsed.is_discarded(), d);
    FUZZ_CHECK(parsed.is_object() && !parsed.empty(), d);
    if (r.status == 415) {
        FUZZ_CHECK(parsed.size() == 1 && parsed.contains("detail"), d);
    }
    if (parsed.contains("detail")) {
        FUZZ_CHECK(parsed.size() == 1 && parsed["detail"].is_string(), d);
        return;
    }
    static const std::set<std::string> kFields = {"username", "password",
                                                  "non_field_errors"};
    for (const auto &[key, value] : parsed.items()) {
        FUZZ_CHECK(kFields.count(key) == 1, d);
        FUZZ_CHECK(value.is_array() && !value.empty(), d);
        for (const auto &message : value) {
            FUZZ_CHECK(message.is_string() && !message.empty(), d);
        }
    }
}

authtoken::ObtainParseResult parse(std::string_view content_type,
                                   std::string_view body)
{
    try {
        return authtoken::parse_obtain_request(content_type, body);
    } catch (const std::exception &e) {
        fuzz::fail("parse_obtain_request threw",
                   std::string(e.what()) + "\ncontent-type " +
                       fuzz::repr(content_type) + "\nbody " + fuzz::repr(body));
    }
}

// --- raw mode --------------------------------------------------------------

const char *const kContentTypes[] = {
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-8",
    "application/x-www-form-urlencoded; charset=latin-1",
    "application/x-www-form-urlencoded; charset=ascii",
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=iso-8859-1",
    "Application/JSON",
    "multipart/form-data; boundary=b",
    "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
    "multipart/form-data; boundary=\"a b\"; charset=latin-1",
    "multipart/form-data; boundary*=utf-8''b%0A",
    "multipart/form-data",
    "*/*",
    "text/plain",
    "",
};
constexpr std::size_t kContentTypeCount =
    sizeof kContentTypes / sizeof kContentTypes[0];

void run_raw(Input &in)
{
    std::uint8_t pick = in.byte();
    std::string content_type =
        pick < kContentTypeCount ? kContentTypes[pick] : in.until('\n');
    std::string body = in.rest();
    check_answer_shape(content_type, body, parse(content_type, body));
}

// --- round trips -----------------------------------------------------------

// What DRF answers for username `u` and password `p` once request.data is
// {"username": u, "password": p}.
struct Expected {
    std::vector<std::string> username_errors, password_errors;
    std::string username, password;
};

Expected drf_validate(const std::vector<char32_t> &u,
                      const std::vector<char32_t> &p)
{
    Expected e;
    std::vector<char32_t> stripped = python_strip(u);
    if (stripped.empty()) {
        e.username_errors.push_back("This field may not be blank.");
    } else if (has_nul(stripped)) {
        e.username_errors.push_back("Null characters are not allowed.");
    }
    if (p.empty()) {
        e.password_errors.push_back("This field may not be blank.");
    } else if (has_nul(p)) {
        e.password_errors.push_back("Null characters are not allowed.");
    }
    e.username = fuzz::encode_utf8(stripped);
    e.password = fuzz::encode_utf8(p);
    return e;
}

void check_round_trip(const std::string &content_type, const std::string &body,
                      const std::vector<char32_t> &u,
                      const std::vector<char32_t> &p)
{
    authtoken::ObtainParseResult r = parse(content_type, body);
    check_answer_shape(content_type, body, r);
    Expected e = drf_validate(u, p);
    std::string d = describe(content_type, body, r) + "\nsent username " +
                    fuzz::repr(fuzz::encode_utf8(u)) + "\nsent password " +
                    fuzz::repr(fuzz::encode_utf8(p));
    if (e.username_errors.empty() && e.password_errors.empty()) {
        FUZZ_CHECK(r.credentials.has_value(), d);
        FUZZ_CHECK(r.credentials->username == e.username, d);
        FUZZ_CHECK(r.credentials->password == e.password, d);
        return;
    }
    FUZZ_CHECK(!r.credentials && r.status == 400, d);
    nlohmann::json want = nlohmann::json::object();
    if (!e.username_errors.empty()) {
        want["username"] = e.username_errors;
    }
    if (!e.password_errors.empty()) {
        want["password"] = e.password_errors;
    }
    FUZZ_CHECK(nlohmann::json::parse(r.body) == want, d);
}

// A field value spelled for application/x-www-form-urlencoded, in one of
// several legal ways chosen by `style`.
std::string form_encode(const std::string &utf8, std::uint8_t style)
{
    static const char kUpper[] = "0123456789ABCDEF";
    static const char kLower[] = "0123456789abcdef";
    const char *hex = (style & 1) ? kLower : kUpper;
    bool keep_unreserved = style & 2;
    bool plus_for_space = style & 4;
    std::string out;
    for (unsigned char c : utf8) {
        bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                          c == '_' || c == '~' || c == '*';
        if (keep_unreserved && unreserved) {
            out += static_cast<char>(c);
        } else if (plus_for_space && c == ' ') {
            out += '+';
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

void run_form(Input &in, const std::vector<char32_t> &u,
              const std::vector<char32_t> &p)
{
    std::uint8_t style = in.byte();
    std::uint8_t layout = in.byte();
    std::string user = "username=" + form_encode(fuzz::encode_utf8(u), style);
    std::string pass =
        "password=" + form_encode(fuzz::encode_utf8(p), style >> 3);
    std::string body;
    if (layout & 1) {
        body += "&&"; // empty pieces are skipped
    }
    if (layout & 2) {
        body += "username=earlier&password=earlier&"; // the last one wins
    }
    if (layout & 4) {
        body += "other=1&flag&";
    }
    body += (layout & 8) ? pass + "&" + user : user + "&" + pass;
    if (layout & 16) {
        body += "&";
    }
    const char *type = (layout & 32)
                           ? "application/x-www-form-urlencoded; charset=UTF-8"
                           : "application/x-www-form-urlencoded";
    check_round_trip(type, body, u, p);
}

std::string base64(const std::string &bytes)
{
    static const char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                     (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                     static_cast<unsigned char>(bytes[i + 2]);
        for (int k = 18; k >= 0; k -= 6) {
            out += kAlphabet[(v >> k) & 63];
        }
    }
    if (i + 1 == bytes.size()) {
        unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += "==";
    } else if (i + 2 == bytes.size()) {
        unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                     (static_cast<unsigned char>(bytes[i + 1]) << 8);
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

std::size_t count_occurrences(const std::string &text, const std::string &what)
{
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos;
         at = text.find(what, at + 1)) {
        n++;
    }
    return n;
}

void run_multipart(Input &in, const std::vector<char32_t> &u,
                   const std::vector<char32_t> &p)
{
    struct Boundary {
        const char *header_value;
        const char *boundary;
    };
    static const Boundary kBoundaries[] = {
        {"multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
         "----WebKitFormBoundary7MA4YWxkTrZu0gW"},
        {"multipart/form-data; boundary=\"a b;c\"", "a b;c"},
        {"multipart/form-data;boundary=X", "X"},
        {"multipart/form-data; charset=utf-8; boundary=zz", "zz"},
    };
    std::uint8_t layout = in.byte();
    const Boundary &b = kBoundaries[layout & 3];
    const std::string sep = std::string("--") + b.boundary;

    auto part = [&](const char *name, const std::string &value, bool b64) {
        std::string out = sep + "\r\nContent-Disposition: form-data; name=\"" +
                          name + "\"\r\n";
        if (b64) {
            out += "Content-Transfer-Encoding: base64\r\n";
        }
        out += "Content-Type: text/plain\r\n\r\n";
        out += b64 ? base64(value) : value;
        return out + "\r\n";
    };
    std::string user = part("username", fuzz::encode_utf8(u), layout & 4);
    std::string pass = part("password", fuzz::encode_utf8(p), layout & 8);
    std::string body;
    std::size_t parts = 2;
    if (layout & 16) {
        body += "preamble ignored\r\n";
    }
    if (layout & 32) {
        body += part("username", "earlier", false);
        body += part("other", "x", false);
        parts += 2;
    }
    body += (layout & 64) ? pass + user : user + pass;
    body += sep + "--\r\n";
    parts++;
    if (count_occurrences(body, sep) != parts) {
        return; // the values contain the boundary: not a well-formed body
    }
    check_round_trip(b.header_value, body, u, p);
}

std::string json_string(const std::vector<char32_t> &text, std::uint8_t style)
{
    bool escape_non_ascii = style & 1;
    bool escape_slash = style & 2;
    bool short_escapes = style & 4;
    auto u_escape = [](char32_t c) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
        return std::string(buf);
    };
    std::string out = "\"";
    for (char32_t c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c == '/' && escape_slash) {
            out += "\\/";
        } else if (short_escapes && (c == '\n' || c == '\t' || c == '\r' ||
                                     c == '\b' || c == '\f')) {
            out += '\\';
            out += c == '\n'   ? 'n'
                   : c == '\t' ? 't'
                   : c == '\r' ? 'r'
                   : c == '\b' ? 'b'
                               : 'f';
        } else if (c < 0x20) {
            out += u_escape(c);
        } else if (c >= 0x80 && escape_non_ascii) {
            if (c >= 0x10000) {
                char32_t v = c - 0x10000;
                out += u_escape(0xd800 + (v >> 10));
                out += u_escape(0xdc00 + (v & 0x3ff));
            } else {
                out += u_escape(c);
            }
        } else {
            fuzz::append_utf8(out, c);
        }
    }
    return out + "\"";
}

void run_json(Input &in, const std::vector<char32_t> &u,
              const std::vector<char32_t> &p)
{
    std::uint8_t style = in.byte();
    std::uint8_t layout = in.byte();
    std::string ws = (layout & 1) ? " \n\t\r" : "";
    std::string user = "\"username\"" + ws + ":" + ws + json_string(u, style);
    std::string pass = "\"password\":" + json_string(p, style >> 3);
    std::string body = ws + "{" + ws;
    if (layout & 2) {
        body += "\"username\":1,\"password\":[null]," + ws; // the last one wins
    }
    if (layout & 4) {
        body += "\"extra\":{\"a\":[1,2.5e3,true,false,null]}," + ws;
    }
    body += (layout & 8) ? pass + "," + ws + user : user + "," + ws + pass;
    body += ws + "}" + ws;
    const char *type =
        (layout & 32) ? "application/json; charset=utf-8" : "application/json";
    if (layout & 16) {
        // json.loads() refuses a str that starts with a BOM, and DRF's
        // utf-8 StreamReader keeps it: a 400 whatever the fields say.
        body = "\xef\xbb\xbf" + body;
        authtoken::ObtainParseResult r = parse(type, body);
        check_answer_shape(type, body, r);
        FUZZ_CHECK(r.status == 400 &&
                       nlohmann::json::parse(r.body)["detail"] ==
                           "JSON parse error - Unexpected UTF-8 BOM (decode "
                           "using utf-8-sig): line 1 column 1 (char 0)",
                   describe(type, body, r));
        return;
    }
    check_round_trip(type, body, u, p);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data,
                                      std::size_t size)
{
    Input in(data, size);
    std::uint8_t mode = in.byte();
    if (mode % 4 == 0) {
        run_raw(in);
        return 0;
    }
    std::vector<char32_t> u = fuzz::to_text(in.short_string());
    std::vector<char32_t> p = fuzz::to_text(in.short_string());
    switch (mode % 4) {
    case 1:
        run_form(in, u, p);
        break;
    case 2:
        run_multipart(in, u, p);
        break;
    default:
        run_json(in, u, p);
        break;
    }
    return 0;
}
