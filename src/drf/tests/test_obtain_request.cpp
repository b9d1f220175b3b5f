// POST /api-token-auth/ bodies read as DRF 3.14's obtain_auth_token reads
// them. The captures in t/fixtures/drf-oracle-public.json come
// from a real DRF; the other expected answers were produced by Debian 12's
// python3-django 3.2.25 and python3-djangorestframework 3.14.0 running
// ObtainAuthToken with authenticate() stubbed out.
#include "core/drf_messages.h"
#include "drf/json_renderer.h"
#include "drf/obtain_request.h"
#include "drf/python/float_repr.h"

#include <nlohmann/json.hpp>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

// Last: cmocka defines macros (fail) that clash with the standard headers.
#include "core/tests/cmocka_cpp.h"

namespace
{

using authtoken::parse_obtain_request;
using namespace std::string_literals;

constexpr std::string_view kJson = "application/json";
constexpr std::string_view kForm = "application/x-www-form-urlencoded";
constexpr std::string_view kMultipart = "multipart/form-data; boundary=XyZ";

constexpr std::string_view kBothRequired =
    R"({"username":["This field is required."],)"
    R"("password":["This field is required."]})";

std::string printable(std::string_view bytes)
{
    std::string out;
    for (char c : bytes.substr(0, 200)) {
        auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7f) {
            out += c;
        } else {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", u);
            out += hex;
        }
    }
    return out;
}

void expect_answer(std::string_view content_type, std::string_view body,
                   int status, std::string_view expected)
{
    auto result = parse_obtain_request(content_type, body);
    if (result.credentials) {
        fail_msg("[%s] %s: credentials %s/%s, expected %d %s",
                 printable(content_type).c_str(), printable(body).c_str(),
                 printable(result.credentials->username).c_str(),
                 printable(result.credentials->password).c_str(), status,
                 printable(expected).c_str());
    }
    if (result.status != status || result.body != expected) {
        fail_msg("[%s] %s:\n  got      %d %s\n  expected %d %s",
                 printable(content_type).c_str(), printable(body).c_str(),
                 result.status, printable(result.body).c_str(), status,
                 printable(expected).c_str());
    }
}

void expect_bad_request(std::string_view content_type, std::string_view body,
                        std::string_view expected)
{
    expect_answer(content_type, body, 400, expected);
}

void expect_credentials(std::string_view content_type, std::string_view body,
                        std::string_view username, std::string_view password)
{
    auto result = parse_obtain_request(content_type, body);
    if (!result.credentials) {
        fail_msg("[%s] %s: answered %d %s, expected credentials %s/%s",
                 printable(content_type).c_str(), printable(body).c_str(),
                 result.status, printable(result.body).c_str(),
                 printable(username).c_str(), printable(password).c_str());
    }
    if (result.credentials->username != username ||
        result.credentials->password != password) {
        fail_msg("[%s] %s: credentials %s/%s, expected %s/%s",
                 printable(content_type).c_str(), printable(body).c_str(),
                 printable(result.credentials->username).c_str(),
                 printable(result.credentials->password).c_str(),
                 printable(username).c_str(), printable(password).c_str());
    }
}

std::string detail(std::string_view text)
{
    return authtoken::render_drf_detail(text);
}

std::string json_error(std::string_view text)
{
    return detail("JSON parse error - "s + std::string(text));
}

std::string multipart_error(std::string_view text)
{
    return detail("Multipart form parse error - "s + std::string(text));
}

std::string field_errors(std::string_view username, std::string_view password)
{
    nlohmann::ordered_json errors = nlohmann::ordered_json::object();
    if (!username.empty()) {
        errors["username"] = {std::string(username)};
    }
    if (!password.empty()) {
        errors["password"] = {std::string(password)};
    }
    return authtoken::render_drf_json(errors);
}

std::string non_field_error(std::string_view text)
{
    nlohmann::ordered_json errors;
    errors["non_field_errors"] = {std::string(text)};
    return authtoken::render_drf_json(errors);
}

// One multipart part: its header lines and content, CRLF as browsers send.
std::string part(std::string_view headers, std::string_view content)
{
    return "--XyZ\r\n"s + std::string(headers) + "\r\n\r\n" +
           std::string(content) + "\r\n";
}

std::string field_part(std::string_view name, std::string_view content,
                       std::string_view extra = {})
{
    return part("Content-Disposition: form-data; name=\"" + std::string(name) +
                    "\"" + std::string(extra),
                content);
}

constexpr std::string_view kEnd = "--XyZ--\r\n";

std::string alice_multipart()
{
    return field_part("username", "alice") +
           field_part("password", "wonderland") + std::string(kEnd);
}

// ---- the captured DRF answers ------------------------------------------

struct FixtureRequest {
    std::string name;
    std::string content_type; // the header's bytes; empty when absent
    std::string body;
    int status = 0;
    std::string response_body;
};

// Header values are stored as the latin-1 reading of their bytes.
std::string latin1_bytes(const std::string &utf8)
{
    std::string out;
    for (std::size_t i = 0; i < utf8.size(); i++) {
        auto c = static_cast<unsigned char>(utf8[i]);
        if (c < 0x80) {
            out += static_cast<char>(c);
        } else if (i + 1 < utf8.size()) {
            out += static_cast<char>(((c & 0x1f) << 6) | (utf8[++i] & 0x3f));
        }
    }
    return out;
}

std::vector<FixtureRequest> load_obtain_posts()
{
    const std::string path =
        std::string(AUTHTOKEN_FIXTURES_DIR) + "/drf-oracle-public.json";
    std::ifstream in(path);
    if (!in) {
        throw std::runtime_error("cannot open " + path);
    }
    const auto oracle = nlohmann::json::parse(in);
    std::vector<FixtureRequest> posts;
    for (const auto &item : oracle.at("cases")) {
        const auto &request = item.at("request");
        if (request.at("method") != "POST" ||
            request.at("path") != "/api-token-auth/") {
            continue;
        }
        FixtureRequest post;
        post.name = item.at("name");
        for (const auto &header : request.at("headers")) {
            std::string name = header.at(0);
            for (char &c : name) {
                c = static_cast<char>(
                    std::tolower(static_cast<unsigned char>(c)));
            }
            if (name == "content-type") {
                post.content_type = latin1_bytes(header.at(1));
            }
        }
        post.body = request.at("body");
        post.status = item.at("response").at("status");
        post.response_body = item.at("response").at("body");
        posts.push_back(std::move(post));
    }
    return posts;
}

void test_fixture_answers_decided_while_parsing_match_drf_byte_for_byte(void **)
{
    std::vector<FixtureRequest> posts;
    try {
        posts = load_obtain_posts();
    } catch (const std::exception &e) {
        fail_msg("reading the DRF fixture: %s", e.what());
    }
    int checked = 0;
    for (const auto &post : posts) {
        bool decided_later =
            post.status == 200 ||
            post.response_body.find("Unable to log in") != std::string::npos;
        if (decided_later) {
            continue;
        }
        expect_answer(post.content_type, post.body, post.status,
                      post.response_body);
        checked++;
    }
    // missing username, missing password, blank both, two empty bodies,
    // {}, a JSON array, text/plain
    assert_true(checked >= 8);
}

void test_fixture_logins_yield_credentials_for_the_check(void **)
{
    std::vector<FixtureRequest> posts;
    try {
        posts = load_obtain_posts();
    } catch (const std::exception &e) {
        fail_msg("reading the DRF fixture: %s", e.what());
    }
    int ok = 0, refused = 0;
    for (const auto &post : posts) {
        auto result = parse_obtain_request(post.content_type, post.body);
        if (post.status == 200) {
            expect_credentials(post.content_type, post.body, "alice",
                               "wonderland");
            ok++;
        } else if (post.response_body.find("Unable to log in") !=
                   std::string::npos) {
            // Parsed fine; the credentials check refuses them later.
            if (!result.credentials) {
                fail_msg("%s: no credentials", post.name.c_str());
            }
            refused++;
        }
    }
    assert_true(ok >= 4);      // form, JSON, multipart, extra JSON fields
    assert_true(refused >= 3); // wrong password, unknown and inactive user
}

// ---- which parser, if any ----------------------------------------------

void test_empty_body_is_not_parsed_so_both_fields_are_required(void **)
{
    for (std::string_view type :
         {std::string_view(), kJson, kForm, std::string_view("text/plain"),
          std::string_view("multipart/form-data"),
          std::string_view("garbage\xff")}) {
        expect_bad_request(type, "", kBothRequired);
    }
}

void test_media_type_ignores_case_whitespace_and_parameters(void **)
{
    expect_credentials("APPLICATION/JSON; charset=UTF-8",
                       R"({"username":"a","password":"b"})", "a", "b");
    expect_credentials(" Application/X-WWW-Form-Urlencoded ;q=1",
                       "username=a&password=b", "a", "b");
    expect_credentials("multipart/form-data; BOUNDARY=XyZ", alice_multipart(),
                       "alice", "wonderland");
}

void test_wildcards_follow_obtain_auth_tokens_parser_order(void **)
{
    // ObtainAuthToken.parser_classes = (Form, MultiPart, JSON)
    expect_credentials("*/*", "username=a&password=b", "a", "b");
    expect_credentials("application/*", "username=a&password=b", "a", "b");
    expect_credentials("*/json", R"({"username":"a","password":"b"})", "a",
                       "b");
    expect_credentials("multipart/*; boundary=XyZ", alice_multipart(), "alice",
                       "wonderland");
}

void test_other_media_types_are_415_quoting_the_header_as_sent(void **)
{
    expect_answer(
        "text/plain", "x", 415,
        R"({"detail":"Unsupported media type \"text/plain\" in request."})");
    expect_answer(
        "text/plain; charset=\"x\\\"y\"", "x", 415,
        R"({"detail":"Unsupported media type \"text/plain; charset=\"x\\\"y\"\" in request."})");
    expect_answer("a\"b\\c\x01\x7f", "x", 415,
                  "{\"detail\":\"Unsupported media type \\\"a\\\"b\\\\c\\u0001"
                  "\x7f\\\" in request.\"}");
    expect_answer(
        "application", "x", 415,
        R"({"detail":"Unsupported media type \"application\" in request."})");
    expect_answer(
        "application/json-patch+json", "{}", 415,
        R"({"detail":"Unsupported media type \"application/json-patch+json\" in request."})");
    // Header bytes are latin-1: 0xE9 is "é", sent back as UTF-8. (DRF
    // itself fails with a 500 on non-ASCII media types.)
    expect_answer("t\xe9xt/plain", "x", 415,
                  "{\"detail\":\"Unsupported media type \\\"t\xc3\xa9xt/plain"
                  "\\\" in request.\"}");
}

void test_body_without_content_type_is_415_for_the_empty_type(void **)
{
    // DRF reads a missing Content-Type as "" and no parser matches it.
    expect_answer("", "username=alice&password=wonderland", 415,
                  R"({"detail":"Unsupported media type \"\" in request."})");
}

// ---- JSON ---------------------------------------------------------------

// tokens_per_user = many: `name` is CharField(required=False,
// allow_blank=True, max_length=64), validated after username and password.
std::string name_of(std::string_view content_type, std::string_view body)
{
    auto result = parse_obtain_request(content_type, body, true);
    if (!result.credentials) {
        fail_msg("%s: answered %d %s", printable(body).c_str(), result.status,
                 printable(result.body).c_str());
    }
    return result.credentials->name;
}

std::string name_refusal(std::string_view content_type, std::string_view body)
{
    auto result = parse_obtain_request(content_type, body, true);
    if (result.credentials || result.status != 400) {
        fail_msg("%s: not refused with 400", printable(body).c_str());
    }
    return result.body;
}

void test_token_name_is_optional_trimmed_and_blank_allowed(void **)
{
    assert_string_equal(
        name_of(kJson, R"({"username":"a","password":"b"})").c_str(), "");
    assert_string_equal(
        name_of(kJson, R"({"username":"a","password":"b","name":"  "})")
            .c_str(),
        "");
    assert_string_equal(
        name_of(kJson, R"({"username":"a","password":"b","name":" pad "})")
            .c_str(),
        "pad");
    assert_string_equal(
        name_of(kForm, "username=a&password=b&name=phone&name=tablet").c_str(),
        "tablet");
    assert_string_equal(
        name_of(kJson, R"({"username":"a","password":"b","name":12})").c_str(),
        "12");
}

// A login body whose name is `name` (raw JSON string content).
std::string body_named(const std::string &name)
{
    return R"({"username":"a","password":"b","name":")" + name + R"("})";
}

void test_token_name_over_64_characters_is_drfs_max_length_error(void **)
{
    const char *too_long =
        R"({"name":["Ensure this field has no more than 64 characters."]})";
    assert_int_equal(name_of(kJson, body_named(std::string(64, 'n'))).size(),
                     64);
    assert_string_equal(
        name_refusal(kJson, body_named(std::string(65, 'n'))).c_str(),
        too_long);
    // Characters, as Python's len(): 64 three-byte characters fit.
    std::string wide;
    for (int i = 0; i < 64; i++) {
        wide += "\xe5\xb1\xb1";
    }
    assert_int_equal(name_of(kJson, body_named(wide)).size(), 192);
    assert_string_equal(name_refusal(kJson, body_named(wide + "x")).c_str(),
                        too_long);
}

void test_token_name_errors_follow_the_other_fields(void **)
{
    assert_string_equal(
        name_refusal(kJson, R"({"username":"a","password":"b","name":null})")
            .c_str(),
        R"({"name":["This field may not be null."]})");
    assert_string_equal(
        name_refusal(kJson, R"({"password":"","name":["x"]})").c_str(),
        R"({"username":["This field is required."],)"
        R"("password":["This field may not be blank."],)"
        R"("name":["Not a valid string."]})");
}

void test_token_name_is_ignored_unless_asked_for_as_drf_does(void **)
{
    // DRF's AuthTokenSerializer ignores unknown fields, whatever they hold.
    expect_credentials(kJson, R"({"username":"a","password":"b","name":null})",
                       "a", "b");
    expect_credentials(kJson, body_named(std::string(100, 'n')), "a", "b");
    auto result =
        parse_obtain_request(kJson, R"({"username":"a","password":"b"})");
    assert_true(result.credentials && result.credentials->name.empty());
}

void test_json_extra_members_are_ignored_and_the_last_duplicate_wins(void **)
{
    expect_credentials(kJson,
                       R"({"token":"x","username":"a","password":"b",)"
                       R"("username":"c","nested":{"username":"d"}})",
                       "c", "b");
}

void test_json_numbers_become_their_python_str(void **)
{
    expect_credentials(kJson, R"({"username":123,"password":-0})", "123", "0");
    expect_credentials(kJson, R"({"username":1.0,"password":1e16})", "1.0",
                       "1e+16");
    expect_credentials(kJson, R"({"username":1e-5,"password":0.1})", "1e-05",
                       "0.1");
    expect_credentials(kJson,
                       R"({"username":12345678901234567890123,)"
                       R"("password":-1.5E+300})",
                       "12345678901234567890123", "-1.5e+300");
    expect_credentials(kJson, R"({"username":-0.0,"password":0.0001})", "-0.0",
                       "0.0001");
}

void test_python_float_repr_switches_to_exponent_like_python(void **)
{
    using authtoken::python_float_repr;
    assert_string_equal(python_float_repr(1e15).c_str(), "1000000000000000.0");
    assert_string_equal(python_float_repr(1234567890123456.0).c_str(),
                        "1234567890123456.0");
    assert_string_equal(python_float_repr(12345678901234567.0).c_str(),
                        "1.2345678901234568e+16");
    assert_string_equal(python_float_repr(5e-324).c_str(), "5e-324");
    assert_string_equal(python_float_repr(1.7976931348623157e308).c_str(),
                        "1.7976931348623157e+308");
    assert_string_equal(python_float_repr(123.456).c_str(), "123.456");
}

void test_json_bool_list_and_object_are_not_valid_strings(void **)
{
    expect_bad_request(
        kJson, R"({"username":true,"password":false})",
        field_errors("Not a valid string.", "Not a valid string."));
    expect_bad_request(
        kJson, R"({"username":[],"password":{"a":1}})",
        field_errors("Not a valid string.", "Not a valid string."));
}

void test_json_null_field_may_not_be_null(void **)
{
    expect_bad_request(kJson, R"({"username":null,"password":null})",
                       field_errors("This field may not be null.",
                                    "This field may not be null."));
}

void test_json_null_document_is_no_data_provided(void **)
{
    expect_bad_request(kJson, "null", non_field_error("No data provided"));
    expect_bad_request(kJson, " null\n", non_field_error("No data provided"));
}

void test_json_document_that_is_no_object_names_its_python_type(void **)
{
    const std::pair<std::string_view, std::string_view> documents[] = {
        {R"(["alice","wonderland"])", "list"},
        {R"("alice")", "str"},
        {"7", "int"},
        {"7.5", "float"},
        {"false", "bool"},
    };
    for (const auto &[document, type] : documents) {
        expect_bad_request(kJson, document,
                           non_field_error("Invalid data. Expected a "
                                           "dictionary, but got " +
                                           std::string(type) + "."));
    }
}

void test_json_syntax_errors_use_pythons_wording(void **)
{
    const std::pair<std::string_view, std::string_view> errors[] = {
        {"  ", "Expecting value: line 1 column 3 (char 2)"},
        {"tru", "Expecting value: line 1 column 1 (char 0)"},
        {"[1,]", "Expecting value: line 1 column 4 (char 3)"},
        {"{", "Expecting property name enclosed in double quotes: line 1 "
              "column 2 (char 1)"},
        {R"({"a":1,})", "Expecting property name enclosed in double quotes: "
                        "line 1 column 8 (char 7)"},
        {R"({"a")", "Expecting ':' delimiter: line 1 column 5 (char 4)"},
        {R"({"a":1 "b":2})",
         "Expecting ',' delimiter: line 1 column 8 (char 7)"},
        {"[1 2]", "Expecting ',' delimiter: line 1 column 4 (char 3)"},
        {R"("abc)",
         "Unterminated string starting at: line 1 column 1 (char 0)"},
        {"\"\x01\"", "Invalid control character at: line 1 column 2 (char 1)"},
        {R"("\q")", "Invalid \\escape: line 1 column 2 (char 1)"},
        {R"(["\uZZZZ"])", "Invalid \\uXXXX escape: line 1 column 4 (char 3)"},
        {"{} x", "Extra data: line 1 column 4 (char 3)"},
        {"{} 123", "Extra data: line 1 column 4 (char 3)"},
        {"truex", "Extra data: line 1 column 5 (char 4)"},
        {"01", "Extra data: line 1 column 2 (char 1)"},
        {"1.", "Extra data: line 1 column 2 (char 1)"},
        {"[1,\n 2,\n  x]", "Expecting value: line 3 column 3 (char 10)"},
        // Positions count characters, not bytes.
        {"{\"\xc3\xa9\":x}", "Expecting value: line 1 column 6 (char 5)"},
    };
    for (const auto &[document, message] : errors) {
        expect_bad_request(kJson, document, json_error(message));
    }
}

void test_json_nan_and_infinity_are_refused_as_drfs_strict_json(void **)
{
    const std::string_view refused =
        "Out of range float values are not JSON compliant: ";
    expect_bad_request(kJson, R"({"username":NaN,"password":"p"})",
                       json_error(std::string(refused) + "'NaN'"));
    expect_bad_request(kJson, "[Infinity]",
                       json_error(std::string(refused) + "'Infinity'"));
    expect_bad_request(kJson, "-Infinity",
                       json_error(std::string(refused) + "'-Infinity'"));
    // Only where a value may start: a key is expected here.
    expect_bad_request(kJson, "{NaN:1}",
                       json_error("Expecting property name enclosed in double "
                                  "quotes: line 1 column 2 (char 1)"));
}

void test_json_body_must_decode_in_the_request_charset(void **)
{
    expect_bad_request(kJson, "{\"username\": \"\xe9\"}",
                       json_error("'utf-8' codec can't decode byte 0xe9 in "
                                  "position 14: invalid continuation byte"));
    expect_bad_request(kJson, "{\"a\":\"\xf0\x90(\"}",
                       json_error("'utf-8' codec can't decode bytes in "
                                  "position 6-7: invalid continuation byte"));
    expect_bad_request(kJson, "{\"a\":\"\xed\xa0\x80\"}",
                       json_error("'utf-8' codec can't decode byte 0xed in "
                                  "position 6: invalid continuation byte"));
    expect_bad_request(kJson, "{\"a\":\"\xc0\xaf\"}",
                       json_error("'utf-8' codec can't decode byte 0xc0 in "
                                  "position 6: invalid start byte"));
    expect_bad_request("application/json;charset=ascii",
                       "{\"username\": \"\xe9\"}",
                       json_error("'ascii' codec can't decode byte 0xe9 in "
                                  "position 14: ordinal not in range(128)"));
    expect_credentials("application/json; charset=ISO-8859-1",
                       "{\"username\":\"\xe9l\",\"password\":\"p\"}",
                       "\xc3\xa9l", "p");
    // Names Python does not know leave Django at UTF-8.
    expect_credentials("application/json; charset=bogus",
                       "{\"username\":\"\xc3\xa9\",\"password\":\"p\"}",
                       "\xc3\xa9", "p");
}

void test_json_incomplete_utf8_at_the_end_is_dropped_as_streamreader_does(
    void **)
{
    expect_credentials(kJson, "{\"username\":\"a\",\"password\":\"b\"}\xe2\x82",
                       "a", "b");
    expect_bad_request(kJson, "{\"username\":\"a\xe2\x82",
                       json_error("Unterminated string starting at: line 1 "
                                  "column 13 (char 12)"));
}

void test_json_utf8_bom_is_refused(void **)
{
    expect_bad_request(kJson, "\xef\xbb\xbf{}",
                       json_error("Unexpected UTF-8 BOM (decode using "
                                  "utf-8-sig): line 1 column 1 (char 0)"));
}

void test_json_nesting_deeper_than_64_levels_is_refused(void **)
{
    std::string ok = std::string(64, '[') + std::string(64, ']');
    expect_bad_request(kJson, ok,
                       non_field_error("Invalid data. Expected a dictionary, "
                                       "but got list."));
    // A million brackets: refused at the 65th, without recursion.
    std::string deep = std::string(1000000, '[');
    expect_bad_request(kJson, deep,
                       json_error("Nesting deeper than 64 levels is not "
                                  "supported: line 1 column 65 (char 64)"));
    std::string objects;
    for (int i = 0; i < 100000; i++) {
        objects += R"({"a":)";
    }
    expect_bad_request(kJson, objects,
                       json_error("Nesting deeper than 64 levels is not "
                                  "supported: line 1 column 321 (char 320)"));
}

void test_json_integer_longer_than_pythons_limit_is_refused(void **)
{
    std::string ok =
        R"({"username":"a","password":)" + std::string(300, '9') + "}";
    expect_credentials(kJson, ok, "a", std::string(300, '9'));
    std::string too_long =
        R"({"username":"a","password":"b","x":)" + std::string(4301, '9') + "}";
    expect_bad_request(kJson, too_long,
                       json_error("Exceeds the limit (4300 digits) for integer "
                                  "string conversion: value has 4301 digits; "
                                  "use sys.set_int_max_str_digits() to "
                                  "increase the limit"));
}

// Python reads these as int or float('inf') and DRF goes on; nlohmann
// cannot, so we refuse them (a deliberate difference).
void test_json_numbers_beyond_a_double_are_refused(void **)
{
    expect_bad_request(kJson, R"({"username":"a","password":1e400})",
                       json_error("Number out of range: line 1 column 28 "
                                  "(char 27)"));
    expect_bad_request(kJson, R"({"username":)" + std::string(309, '9') + "}",
                       json_error("Number out of range: line 1 column 13 "
                                  "(char 12)"));
}

void test_json_nul_byte_outside_strings_is_not_the_end(void **)
{
    expect_bad_request(kJson, "{\"username\":\"a\",\"password\":\"b\"}\0"s,
                       json_error("Extra data: line 1 column 32 (char 31)"));
    expect_bad_request(kJson, "\0"s,
                       json_error("Expecting value: line 1 column 1 (char 0)"));
    expect_bad_request(kJson, "[1,\0]"s,
                       json_error("Expecting value: line 1 column 4 (char 3)"));
}

// ---- urlencoded forms ---------------------------------------------------

void test_form_plus_is_space_and_escapes_are_utf8(void **)
{
    expect_credentials(kForm, "username=a+b%20c&password=%C3%A9%2B+", "a b c",
                       "\xc3\xa9+ ");
    // Malformed escapes stay as they are.
    expect_credentials(kForm, "username=%zz%4&password=%%41", "%zz%4", "%A");
}

void test_form_repeated_key_last_value_wins(void **)
{
    expect_credentials(kForm, "username=a&password=p&username=b", "b", "p");
}

void test_form_key_without_equals_has_an_empty_value(void **)
{
    expect_bad_request(kForm, "username&password",
                       field_errors("This field may not be blank.",
                                    "This field may not be blank."));
    expect_credentials(kForm, "&&username==x&password=a=b&&", "=x", "a=b");
}

void test_form_bad_utf8_in_escapes_becomes_replacement_characters(void **)
{
    // One U+FFFD per maximal invalid sequence, as Python's decoder does.
    expect_credentials(kForm, "username=%ff%c3&password=a%F0%90%28",
                       "\xef\xbf\xbd\xef\xbf\xbd", "a\xef\xbf\xbd(");
}

void test_form_body_that_is_not_utf8_is_read_as_latin1(void **)
{
    // Django's QueryDict falls back to latin-1 for the whole body, even
    // for the bytes that were valid UTF-8.
    expect_credentials(kForm, "username=\xc3\xa9&password=\xe9",
                       "\xc3\x83\xc2\xa9", "\xc3\xa9");
    expect_credentials(kForm, "username=\xc3\xa9&password=p", "\xc3\xa9", "p");
}

void test_form_charset_decides_how_escapes_decode(void **)
{
    expect_credentials("application/x-www-form-urlencoded; charset=latin-1",
                       "username=%e9&password=\xe9", "\xc3\xa9", "\xc3\xa9");
    expect_credentials("application/x-www-form-urlencoded; charset=us-ascii",
                       "username=%e9&password=p", "\xef\xbf\xbd", "p");
}

void test_form_semicolon_does_not_separate_fields(void **)
{
    expect_bad_request(kForm, "username=a;password=b",
                       field_errors("", "This field is required."));
}

void test_form_with_more_than_1000_fields_is_refused(void **)
{
    std::string fields = "username=a&password=b";
    expect_credentials(kForm, fields + std::string(998, '&'), "a", "b");
    expect_bad_request(kForm, fields + std::string(999, '&'),
                       detail("The number of GET/POST parameters exceeded "
                              "settings.DATA_UPLOAD_MAX_NUMBER_FIELDS."));
}

// ---- multipart forms ----------------------------------------------------

void test_multipart_fields_come_from_content_disposition_names(void **)
{
    expect_credentials(kMultipart, alice_multipart(), "alice", "wonderland");
    expect_credentials("multipart/form-data; boundary=\"XyZ\"",
                       alice_multipart(), "alice", "wonderland");
    // Header names and parameters in any case and spacing.
    expect_credentials(kMultipart,
                       part("X-Other: 1\r\ncontent-disposition:form-data;"
                            "NAME=username\r\nContent-Type: text/plain",
                            "alice") +
                           field_part("password", " p ") + std::string(kEnd),
                       "alice", " p ");
}

void test_multipart_needs_a_valid_boundary(void **)
{
    auto body = alice_multipart();
    expect_bad_request("multipart/form-data", body,
                       multipart_error("Invalid boundary in multipart: None"));
    expect_bad_request("multipart/form-data; boundary=", body,
                       multipart_error("Invalid boundary in multipart: "));
    expect_bad_request("multipart/form-data; boundary=\"a \"", body,
                       multipart_error("Invalid boundary in multipart: a "));
    std::string too_long(202, 'a');
    expect_bad_request(
        "multipart/form-data; boundary=" + too_long, body,
        multipart_error("Invalid boundary in multipart: " + too_long));
}

void test_multipart_type_prefix_is_case_sensitive_in_django(void **)
{
    // DRF picks the parser case-insensitively; Django then insists.
    expect_bad_request("Multipart/form-data; boundary=XyZ", alice_multipart(),
                       multipart_error("Invalid Content-Type: "
                                       "Multipart/form-data; boundary=XyZ"));
    expect_bad_request("*/form-data; boundary=XyZ", alice_multipart(),
                       multipart_error("Invalid Content-Type: "
                                       "*/form-data; boundary=XyZ"));
}

void test_multipart_non_ascii_content_type_is_refused(void **)
{
    expect_bad_request("multipart/form-data; boundary=\xe9", alice_multipart(),
                       multipart_error("Invalid non-ASCII Content-Type in "
                                       "multipart: multipart/form-data; "
                                       "boundary=\xc3\xa9"));
}

void test_multipart_file_part_makes_its_field_not_a_valid_string(void **)
{
    // request.FILES is added after request.POST under each key.
    expect_bad_request(
        kMultipart,
        field_part("username", "alice") +
            field_part("password", "x", "; filename=\"secret.txt\"") +
            field_part("password", "wonderland") + std::string(kEnd),
        field_errors("", "Not a valid string."));
    // A file named all blanks is a blank username.
    expect_bad_request(kMultipart,
                       field_part("username", "x", "; filename=\"  \"") +
                           field_part("password", "p") + std::string(kEnd),
                       field_errors("This field may not be blank.", ""));
}

void test_multipart_file_lands_only_when_another_part_follows(void **)
{
    std::string head = field_part("username", "a") +
                       field_part("password", "p") +
                       "--XyZ\r\nContent-Disposition: form-data; "
                       "name=\"password\"; filename=\"f\"\r\n\r\nx\r\n";
    expect_credentials(kMultipart, head + "--XyZ", "a", "p");
    expect_bad_request(kMultipart, head + "--XyZ--",
                       field_errors("", "Not a valid string."));
}

void test_multipart_unusable_file_names_are_no_files(void **)
{
    for (std::string_view name : {"dir/", "..", "a\\\\."}) {
        expect_credentials(
            kMultipart,
            field_part("username", "a") +
                field_part("password", "x",
                           "; filename=\"" + std::string(name) + "\"") +
                field_part("password", "p") + std::string(kEnd),
            "a", "p");
    }
}

void test_multipart_empty_filename_is_a_plain_field(void **)
{
    expect_credentials(kMultipart,
                       field_part("username", "alice", "; filename=\"\"") +
                           field_part("password", "wonderland") +
                           std::string(kEnd),
                       "alice", "wonderland");
}

void test_multipart_missing_final_boundary_still_yields_fields(void **)
{
    // Without a boundary after it, the last part keeps its line end.
    std::string body =
        field_part("username", "alice") + field_part("password", "wonderland");
    expect_credentials(kMultipart, body, "alice", "wonderland\r\n");
    body.erase(body.size() - 2);
    expect_credentials(kMultipart, body, "alice", "wonderland");
}

void test_multipart_parts_without_crlf_header_end_are_skipped(void **)
{
    // LF-only line endings: no "\r\n\r\n", so no headers, so no fields.
    std::string body = alice_multipart();
    std::string lf_only;
    for (char c : body) {
        if (c != '\r') {
            lf_only += c;
        }
    }
    expect_bad_request(kMultipart, lf_only, kBothRequired);
    // Headers must end within a part's first 1024 bytes.
    std::string padded = "Content-Disposition: form-data; name=\"username\"" +
                         std::string(980, ' ');
    expect_bad_request(kMultipart,
                       part(padded, "alice") + field_part("password", "p") +
                           std::string(kEnd),
                       field_errors("This field is required.", ""));
}

void test_multipart_last_value_wins_and_boundaries_count_anywhere(void **)
{
    expect_credentials(kMultipart,
                       field_part("username", "a") +
                           field_part("username", "b") +
                           field_part("password", "p") + std::string(kEnd),
                       "b", "p");
    // Django cuts at "--XyZ" wherever it is, and backs up over one LF and
    // one CR before it.
    expect_credentials(kMultipart,
                       field_part("username", "al") +
                           "--XyZ\r\nContent-Disposition: form-data; "
                           "name=\"password\"\r\n\r\npw\r\n\r\n--XyZice\r\n" +
                           std::string(kEnd),
                       "al", "pw\r\n");
}

void test_multipart_base64_transfer_encoding_is_decoded(void **)
{
    expect_credentials(kMultipart,
                       field_part("username", "YWxp Y2U=",
                                  "\r\nContent-Transfer-Encoding: base64") +
                           field_part("password", "d29uZGVybGFuZA==",
                                      "\r\nContent-Transfer-Encoding: BASE64") +
                           std::string(kEnd),
                       "alice", "wonderland");
    // Django keeps the raw text when b64decode() raises.
    expect_credentials(kMultipart,
                       field_part("username", "YWxpY2U",
                                  "\r\nContent-Transfer-Encoding: base64") +
                           field_part("password", "p") + std::string(kEnd),
                       "YWxpY2U", "p");
    expect_bad_request(kMultipart,
                       field_part("username", "a") +
                           field_part("f", "abc",
                                      "; filename=\"f\"\r\n"
                                      "Content-Transfer-Encoding: base64") +
                           std::string(kEnd),
                       multipart_error("Could not decode base64 data."));
}

void test_multipart_rfc2231_names_are_decoded(void **)
{
    expect_credentials(kMultipart,
                       part("Content-Disposition: form-data; "
                            "name*=utf-8''us%65rname",
                            "alice") +
                           field_part("password", "p") + std::string(kEnd),
                       "alice", "p");
}

void test_multipart_caps_fields_files_and_field_bytes(void **)
{
    std::string many;
    for (int i = 0; i < 998; i++) {
        many += field_part("f", "x");
    }
    std::string alice =
        field_part("username", "a") + field_part("password", "p");
    expect_credentials(kMultipart, many + alice + std::string(kEnd), "a", "p");
    expect_bad_request(kMultipart,
                       many + field_part("f", "x") + alice + std::string(kEnd),
                       multipart_error("The number of GET/POST parameters "
                                       "exceeded settings."
                                       "DATA_UPLOAD_MAX_NUMBER_FIELDS."));
    std::string files;
    for (int i = 0; i < 101; i++) {
        files += field_part("f", "x", "; filename=\"a\"");
    }
    expect_bad_request(
        kMultipart, files + alice + std::string(kEnd),
        multipart_error("The number of files exceeded "
                        "settings.DATA_UPLOAD_MAX_NUMBER_FILES."));
    expect_bad_request(kMultipart,
                       field_part("username", std::string(2621440, 'a')) +
                           field_part("password", "p") + std::string(kEnd),
                       multipart_error("Request body exceeded settings."
                                       "DATA_UPLOAD_MAX_MEMORY_SIZE."));
}

double seconds_to_parse(std::string_view content_type, std::string_view body)
{
    auto start = std::chrono::steady_clock::now();
    (void)parse_obtain_request(content_type, body);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                         start)
        .count();
}

void test_hostile_bodies_parse_in_linear_time(void **)
{
    // A long boundary that almost matches everywhere: quadratic for a
    // naive search, one pass for ours.
    std::string boundary(200, 'a');
    std::string type = "multipart/form-data; boundary=" + boundary + "b";
    std::string body = "--" + std::string(2 << 20, 'a');
    double multipart = seconds_to_parse(type, body);
    // Many '%' escapes, quotes and brackets.
    std::string form = "username=";
    while (form.size() < (2u << 20)) {
        form += "%C3%A9%zz+";
    }
    double urlencoded = seconds_to_parse(kForm, form);
    std::string json = R"({"username":")";
    while (json.size() < (2u << 20)) {
        json += R"(\u00e9\"[{)";
    }
    json += R"(","password":[)";
    for (int i = 0; i < 50000; i++) {
        json += "1.5e3,";
    }
    json += "0]}";
    double json_seconds = seconds_to_parse(kJson, json);
    if (multipart > 2 || urlencoded > 2 || json_seconds > 2) {
        fail_msg("2 MiB took %.2f s (multipart), %.2f s (form), %.2f s (json)",
                 multipart, urlencoded, json_seconds);
    }
}

// ---- AuthTokenSerializer's fields --------------------------------------

void test_username_is_stripped_of_python_whitespace(void **)
{
    // \t \n \v \f \r, U+001C..U+001F, U+00A0, U+2028, U+3000 are all
    // whitespace to str.strip(); U+200B and U+FEFF are not.
    expect_credentials(kJson,
                       R"({"username":"\u00a0\u3000\u2028\u001c a \t\u000b",)"
                       R"("password":" p "})",
                       "a", " p ");
    expect_credentials(kJson, R"({"username":"\u200b\ufeff","password":"p"})",
                       "\xe2\x80\x8b\xef\xbb\xbf", "p");
    expect_credentials(kForm, "username=%0D%0Aalice%20&password=x", "alice",
                       "x");
}

void test_password_is_not_stripped_but_empty_is_blank(void **)
{
    expect_credentials(kForm, "username=alice&password=+wonderland+", "alice",
                       " wonderland ");
    expect_credentials(kForm, "username=alice&password=+", "alice", " ");
    expect_bad_request(kForm, "username=alice&password=",
                       field_errors("", "This field may not be blank."));
}

void test_whitespace_only_username_is_blank(void **)
{
    expect_bad_request(kJson, R"({"username":" \t\u3000","password":"p"})",
                       field_errors("This field may not be blank.", ""));
}

void test_nul_characters_are_not_allowed_in_either_field(void **)
{
    expect_bad_request(kJson, R"({"username":"a\u0000","password":"\u0000"})",
                       field_errors("Null characters are not allowed.",
                                    "Null characters are not allowed."));
    expect_bad_request(kForm, "username=alice&password=a%00b",
                       field_errors("", "Null characters are not allowed."));
}

void test_both_fields_are_reported_together_username_first(void **)
{
    expect_bad_request(kForm, "password=&username=",
                       R"({"username":["This field may not be blank."],)"
                       R"("password":["This field may not be blank."]})");
    expect_bad_request(kJson, R"({"password":null})",
                       R"({"username":["This field is required."],)"
                       R"("password":["This field may not be null."]})");
}

void test_renderer_writes_compact_utf8_json_like_drf(void **)
{
    nlohmann::ordered_json value;
    value["z"] = {"\xc3\xa9\x01\x7f\"\\\n\xe2\x80\xa8\xe2\x80\xa9"};
    value["a"] = 1;
    assert_string_equal(authtoken::render_drf_json(value).c_str(),
                        "{\"z\":[\"\xc3\xa9\\u0001\x7f\\\"\\\\\\n\\u2028"
                        "\\u2029\"],\"a\":1}");
}

// The module's ready-made bodies (core/drf_messages.h) are what the one
// renderer writes for their details, and their details and statuses are
// DRF's, written out.
void test_catalogue_bodies_are_what_the_renderer_writes(void **)
{
    namespace drf = authtoken::drf;
    const drf::DrfError all[] = {
        drf::kNotProvided,       drf::kNoCredentials,  drf::kContainsSpaces,
        drf::kInvalidCharacters, drf::kInvalidToken,   drf::kInactive,
        drf::kUnavailable,       drf::kServerError,    drf::kParseError,
        drf::kNotFound,          drf::kIncompleteBody, drf::kBodyTooLarge,
        drf::kUriTooLong,        drf::kRequestFailed};
    for (const drf::DrfError &error : all) {
        assert_string_equal(authtoken::render_drf_detail(error.detail).c_str(),
                            std::string(error.body).c_str());
    }
    assert_int_equal(drf::kInvalidToken.status, 401);
    assert_string_equal(std::string(drf::kInvalidToken.body).c_str(),
                        R"({"detail":"Invalid token."})");
    assert_int_equal(drf::kUnavailable.status, 503);
    assert_int_equal(drf::kServerError.status, 500);
    assert_string_equal(std::string(drf::kServerError.body).c_str(),
                        R"({"detail":"A server error occurred."})");
}

// The details that hold a value, rendered: DRF 3.14's Throttled (singular
// for 1), MethodNotAllowed and UnsupportedMediaType, and the serializer's
// non_field_errors dict.
void test_details_with_values_render_as_drf_writes_them(void **)
{
    namespace drf = authtoken::drf;
    using authtoken::render_drf_detail;
    assert_string_equal(
        render_drf_detail(drf::throttled_detail(1)).c_str(),
        R"({"detail":"Request was throttled. Expected available in 1 second."})");
    assert_string_equal(
        render_drf_detail(drf::throttled_detail(42)).c_str(),
        R"({"detail":"Request was throttled. Expected available in 42 seconds."})");
    assert_string_equal(
        render_drf_detail(drf::method_not_allowed_detail("GET")).c_str(),
        R"({"detail":"Method \"GET\" not allowed."})");
    assert_string_equal(
        render_drf_detail(drf::unsupported_media_type_detail("text/plain"))
            .c_str(),
        R"({"detail":"Unsupported media type \"text/plain\" in request."})");
    assert_string_equal(
        render_drf_detail(drf::body_larger_than_detail(4096)).c_str(),
        R"({"detail":"Request body is larger than 4096 bytes."})");
    assert_string_equal(
        authtoken::render_drf_non_field_error(drf::kUnableToLogIn).c_str(),
        R"({"non_field_errors":["Unable to log in with provided credentials."]})");
}

// The helpers above build most expected bodies with the production
// renderer. These are the bytes DRF 3.15 sends, written out, so that a
// fault in the renderer or in a message constant cannot hide behind them.
void test_expected_bodies_are_drf_bytes_written_out(void **)
{
    assert_string_equal(non_field_error("No data provided").c_str(),
                        R"({"non_field_errors":["No data provided"]})");
    assert_string_equal(
        field_errors("This field may not be blank.", "This field is required.")
            .c_str(),
        R"({"username":["This field may not be blank."],)"
        R"("password":["This field is required."]})");
    assert_string_equal(detail("JSON parse error - Expecting value").c_str(),
                        R"({"detail":"JSON parse error - Expecting value"})");
    expect_bad_request(kJson, "null",
                       R"({"non_field_errors":["No data provided"]})");
    expect_bad_request(kJson, R"({"username":null,"password":null})",
                       R"({"username":["This field may not be null."],)"
                       R"("password":["This field may not be null."]})");
    expect_bad_request(kJson, R"({"username":true,"password":"x"})",
                       R"({"username":["Not a valid string."]})");
}

// ---- robustness ---------------------------------------------------------

// Every answer is a verdict: credentials, or a 400/415 with a JSON body.
void test_random_bodies_never_crash_and_always_answer(void **)
{
    const std::string_view types[] = {kJson,
                                      kForm,
                                      kMultipart,
                                      "text/plain",
                                      "",
                                      "application/json; charset=latin-1",
                                      "multipart/form-data"};
    const std::string_view pieces[] = {"{",
                                       "}",
                                       "[",
                                       "]",
                                       "\"",
                                       ":",
                                       ",",
                                       "\\",
                                       "\\u",
                                       "null",
                                       "1e9",
                                       "username",
                                       "password",
                                       "=",
                                       "&",
                                       "%",
                                       "%C3",
                                       "+",
                                       "--XyZ",
                                       "\r\n",
                                       "\r\n\r\n",
                                       "Content-Disposition: form-data; name=",
                                       "; filename=",
                                       "\xff",
                                       "\xc3",
                                       "\xe2\x80\xa8",
                                       std::string_view("\0", 1),
                                       " ",
                                       "a"};
    std::uint64_t state = 0x9e3779b97f4a7c15u;
    auto next = [&state](std::size_t bound) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return static_cast<std::size_t>(state % bound);
    };
    for (int round = 0; round < 20000; round++) {
        std::string body;
        std::size_t count = 1 + next(24);
        for (std::size_t i = 0; i < count; i++) {
            body += pieces[next(std::size(pieces))];
        }
        std::string_view type = types[next(std::size(types))];
        auto result = parse_obtain_request(type, body);
        if (result.credentials) {
            continue;
        }
        if ((result.status != 400 && result.status != 415) ||
            !nlohmann::json::accept(result.body)) {
            fail_msg("[%s] %s: answered %d %s", printable(type).c_str(),
                     printable(body).c_str(), result.status,
                     printable(result.body).c_str());
        }
    }
}

} // namespace

int main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_fixture_answers_decided_while_parsing_match_drf_byte_for_byte),
        cmocka_unit_test(test_fixture_logins_yield_credentials_for_the_check),
        cmocka_unit_test(
            test_empty_body_is_not_parsed_so_both_fields_are_required),
        cmocka_unit_test(
            test_media_type_ignores_case_whitespace_and_parameters),
        cmocka_unit_test(test_wildcards_follow_obtain_auth_tokens_parser_order),
        cmocka_unit_test(
            test_other_media_types_are_415_quoting_the_header_as_sent),
        cmocka_unit_test(
            test_body_without_content_type_is_415_for_the_empty_type),
        cmocka_unit_test(
            test_json_extra_members_are_ignored_and_the_last_duplicate_wins),
        cmocka_unit_test(test_json_numbers_become_their_python_str),
        cmocka_unit_test(
            test_python_float_repr_switches_to_exponent_like_python),
        cmocka_unit_test(test_json_bool_list_and_object_are_not_valid_strings),
        cmocka_unit_test(test_json_null_field_may_not_be_null),
        cmocka_unit_test(test_token_name_is_optional_trimmed_and_blank_allowed),
        cmocka_unit_test(
            test_token_name_over_64_characters_is_drfs_max_length_error),
        cmocka_unit_test(test_token_name_errors_follow_the_other_fields),
        cmocka_unit_test(
            test_token_name_is_ignored_unless_asked_for_as_drf_does),
        cmocka_unit_test(test_json_null_document_is_no_data_provided),
        cmocka_unit_test(
            test_json_document_that_is_no_object_names_its_python_type),
        cmocka_unit_test(test_json_syntax_errors_use_pythons_wording),
        cmocka_unit_test(
            test_json_nan_and_infinity_are_refused_as_drfs_strict_json),
        cmocka_unit_test(test_json_body_must_decode_in_the_request_charset),
        cmocka_unit_test(
            test_json_incomplete_utf8_at_the_end_is_dropped_as_streamreader_does),
        cmocka_unit_test(test_json_utf8_bom_is_refused),
        cmocka_unit_test(test_json_nesting_deeper_than_64_levels_is_refused),
        cmocka_unit_test(
            test_json_integer_longer_than_pythons_limit_is_refused),
        cmocka_unit_test(test_json_numbers_beyond_a_double_are_refused),
        cmocka_unit_test(test_json_nul_byte_outside_strings_is_not_the_end),
        cmocka_unit_test(test_form_plus_is_space_and_escapes_are_utf8),
        cmocka_unit_test(test_form_repeated_key_last_value_wins),
        cmocka_unit_test(test_form_key_without_equals_has_an_empty_value),
        cmocka_unit_test(
            test_form_bad_utf8_in_escapes_becomes_replacement_characters),
        cmocka_unit_test(test_form_body_that_is_not_utf8_is_read_as_latin1),
        cmocka_unit_test(test_form_charset_decides_how_escapes_decode),
        cmocka_unit_test(test_form_semicolon_does_not_separate_fields),
        cmocka_unit_test(test_form_with_more_than_1000_fields_is_refused),
        cmocka_unit_test(
            test_multipart_fields_come_from_content_disposition_names),
        cmocka_unit_test(test_multipart_needs_a_valid_boundary),
        cmocka_unit_test(
            test_multipart_type_prefix_is_case_sensitive_in_django),
        cmocka_unit_test(test_multipart_non_ascii_content_type_is_refused),
        cmocka_unit_test(
            test_multipart_file_part_makes_its_field_not_a_valid_string),
        cmocka_unit_test(
            test_multipart_file_lands_only_when_another_part_follows),
        cmocka_unit_test(test_multipart_unusable_file_names_are_no_files),
        cmocka_unit_test(test_multipart_empty_filename_is_a_plain_field),
        cmocka_unit_test(
            test_multipart_missing_final_boundary_still_yields_fields),
        cmocka_unit_test(
            test_multipart_parts_without_crlf_header_end_are_skipped),
        cmocka_unit_test(
            test_multipart_last_value_wins_and_boundaries_count_anywhere),
        cmocka_unit_test(test_multipart_base64_transfer_encoding_is_decoded),
        cmocka_unit_test(test_multipart_rfc2231_names_are_decoded),
        cmocka_unit_test(test_multipart_caps_fields_files_and_field_bytes),
        cmocka_unit_test(test_hostile_bodies_parse_in_linear_time),
        cmocka_unit_test(test_username_is_stripped_of_python_whitespace),
        cmocka_unit_test(test_password_is_not_stripped_but_empty_is_blank),
        cmocka_unit_test(test_whitespace_only_username_is_blank),
        cmocka_unit_test(test_nul_characters_are_not_allowed_in_either_field),
        cmocka_unit_test(test_both_fields_are_reported_together_username_first),
        cmocka_unit_test(test_renderer_writes_compact_utf8_json_like_drf),
        cmocka_unit_test(test_catalogue_bodies_are_what_the_renderer_writes),
        cmocka_unit_test(test_details_with_values_render_as_drf_writes_them),
        cmocka_unit_test(test_expected_bodies_are_drf_bytes_written_out),
        cmocka_unit_test(test_random_bodies_never_crash_and_always_answer),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
