// authtoken::parse_django_dumpdata(): the validation of a
// `manage.py dumpdata auth.user authtoken.token` file, before anything is
// written to Redis.
//
// Invariants:
//   - it returns records or throws DumpdataError, nothing else (numbers
//     too large for a double included: AUTHTOKEN_FUZZ_CHECK_NUMBER_OVERFLOW);
//   - a refusal names its place: "line L, column C: ..." exactly when the
//     text is not JSON (L within the text), otherwise "at <pointer>: ..."
//     with a JSON Pointer that exists in the document;
//   - a refusal for a username's or key's length is true in characters,
//     as Django's max_length counts them (150 for usernames, 40 for keys;
//     AUTHTOKEN_FUZZ_LENGTHS_IN_CHARACTERS);
//   - an accepted file gives one record per auth.user object, with unique
//     uids in 1..2^53, unique non-empty usernames of at most 150
//     characters, and as many keys as authtoken.token objects, unique,
//     each at most 40 characters without spaces or control characters,
//     each on the user its object names, and every field as in the file;
//   - writing the records back out as dumpdata (tokens first, users in
//     reverse, so order must not matter) and reading that again gives the
//     same records.
#include "issuer/django_import.h"
#include "fuzz_support.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <set>

// Django's max_length counts characters, and so does the importer: a
// username of 76 Cyrillic letters (152 bytes) or a 21-character key of
// accented letters is accepted, as Django holds it. (The importer once
// counted bytes; this check is on, and -D...=0 turns it off.)
#ifndef AUTHTOKEN_FUZZ_LENGTHS_IN_CHARACTERS
#define AUTHTOKEN_FUZZ_LENGTHS_IN_CHARACTERS 1
#endif

// A number beyond a double's range ("[1e999]") makes nlohmann throw
// json::out_of_range (406); parse_django_dumpdata() must turn it into a
// DumpdataError with a line and column, as for any text that is not JSON.
// (It once let the exception through; this check is on, and -D...=0
// turns it off.)
#ifndef AUTHTOKEN_FUZZ_CHECK_NUMBER_OVERFLOW
#define AUTHTOKEN_FUZZ_CHECK_NUMBER_OVERFLOW 1
#endif

namespace
{

using authtoken::ImportedUser;
using nlohmann::json;

std::size_t characters(const std::string &utf8)
{
    auto text = fuzz::decode_utf8(utf8);
    FUZZ_CHECK(text.has_value(),
               "not UTF-8 after nlohmann: " + fuzz::repr(utf8));
    return text->size();
}

bool key_has_space_or_control(const std::string &key)
{
    return std::any_of(key.begin(), key.end(), [](char c) {
        auto b = static_cast<unsigned char>(c);
        return b <= 0x20 || b == 0x7f;
    });
}

std::string describe(const std::string &text, const std::string &what)
{
    return "input " + fuzz::repr(text) + "\n" + what;
}

void check_refusal(const std::string &text, const std::string &message)
{
    const std::string d = describe(text, "error: " + message);
    json document = json::parse(text, nullptr, false);
    if (document.is_discarded()) {
        // "line L, column C: ..."
        unsigned long line = 0, column = 0;
        int consumed = 0;
        FUZZ_CHECK(std::sscanf(message.c_str(), "line %lu, column %lu: %n",
                               &line, &column, &consumed) == 2 &&
                       consumed > 0,
                   d);
        std::size_t lines = 1 + static_cast<std::size_t>(
                                    std::count(text.begin(), text.end(), '\n'));
        FUZZ_CHECK(line >= 1 && line <= lines && column >= 1, d);
        return;
    }
    // The whole-file checks say how many and where, group by group:
    // "refused N <what>: at /1/pk, /5/pk (and M more); N <what>: at ...".
    // Every pointer shown must name a place in the document.
    if (message.rfind("refused ", 0) == 0) {
        std::size_t groups = 0;
        for (std::size_t pos = message.find(": at "); pos != std::string::npos;
             pos = message.find(": at ", pos)) {
            pos += 5;
            std::size_t end = message.find_first_of(";(", pos);
            std::string list = message.substr(
                pos, end == std::string::npos ? std::string::npos : end - pos);
            for (std::size_t start = 0; start < list.size();) {
                std::size_t comma = list.find(", ", start);
                std::string pointer = list.substr(
                    start, comma == std::string::npos ? std::string::npos
                                                      : comma - start);
                while (!pointer.empty() && pointer.back() == ' ') {
                    pointer.pop_back();
                }
                try {
                    FUZZ_CHECK(document.contains(json::json_pointer(pointer)),
                               d);
                } catch (const json::exception &) {
                    fuzz::fail("not a JSON Pointer", d);
                }
                start = comma == std::string::npos ? list.size() : comma + 2;
            }
            groups++;
        }
        FUZZ_CHECK(groups > 0, d);
        return;
    }
    // "at <pointer>: ..."
    FUZZ_CHECK(message.rfind("at /", 0) == 0, d);
    std::size_t colon = message.find(": ");
    FUZZ_CHECK(colon != std::string::npos, d);
    std::string pointer = message.substr(3, colon - 3);
    if (pointer == "/") {
        pointer.clear(); // the module writes "/" for the whole document
    }
    json::json_pointer where;
    try {
        where = json::json_pointer(pointer);
    } catch (const json::exception &) {
        fuzz::fail("not a JSON Pointer", d);
    }
    FUZZ_CHECK(document.contains(where), d);

    const json &at = document.at(where);
    if (!AUTHTOKEN_FUZZ_LENGTHS_IN_CHARACTERS) {
        return;
    }
    // The reason follows the pointer; values quoted in it (a model name,
    // say) may contain anything, so only its start is compared.
    const std::string reason = message.substr(colon + 2);
    if (reason.rfind("expected 1 to 150 characters", 0) == 0) {
        FUZZ_CHECK(at.is_string(), d);
        std::size_t n = characters(at.get<std::string>());
        FUZZ_CHECK(n == 0 || n > 150, d + "\n(" + std::to_string(n) +
                                          " characters: Django accepts it)");
    }
    if (reason.rfind("expected a key of 1 to 40 characters", 0) == 0) {
        FUZZ_CHECK(at.is_string(), d);
        std::string key = at.get<std::string>();
        std::size_t n = characters(key);
        FUZZ_CHECK(n == 0 || n > 40 || key_has_space_or_control(key),
                   d + "\n(" + std::to_string(n) + " characters)");
    }
}

std::string or_empty(const json &fields, const char *name)
{
    auto it = fields.find(name);
    return it == fields.end() || it->is_null() ? std::string()
                                               : it->get<std::string>();
}

void check_records(const std::string &text,
                   const std::vector<ImportedUser> &users)
{
    const std::string d = describe(text, "accepted");
    json document = json::parse(text); // it was accepted, so it parses
    FUZZ_CHECK(document.is_array(), d);

    std::map<std::uint64_t, const json *> user_objects;
    std::vector<const json *> token_objects;
    for (const json &object : document) {
        std::string model = object.at("model").get<std::string>();
        if (model == "auth.user") {
            user_objects[object.at("pk").get<std::uint64_t>()] = &object;
        } else {
            FUZZ_CHECK(model == "authtoken.token", d);
            token_objects.push_back(&object);
        }
    }
    FUZZ_CHECK(users.size() == user_objects.size(), d);

    std::set<std::uint64_t> uids;
    std::set<std::string> names, keys;
    for (const ImportedUser &u : users) {
        FUZZ_CHECK(u.uid >= 1 && u.uid <= (1ULL << 53), d);
        FUZZ_CHECK(uids.insert(u.uid).second, d);
        FUZZ_CHECK(!u.username.empty() && characters(u.username) <= 150, d);
        FUZZ_CHECK(names.insert(u.username).second, d);
        auto it = user_objects.find(u.uid);
        FUZZ_CHECK(it != user_objects.end(), d);
        const json &fields = it->second->at("fields");
        FUZZ_CHECK(fields.at("username") == u.username, d);
        FUZZ_CHECK(fields.at("password") == u.password, d);
        FUZZ_CHECK(fields.at("is_active") == u.is_active, d);
        FUZZ_CHECK(fields.at("is_staff") == u.is_staff, d);
        FUZZ_CHECK(fields.at("is_superuser") == u.is_superuser, d);
        FUZZ_CHECK(or_empty(fields, "email") == u.email, d);
        FUZZ_CHECK(or_empty(fields, "date_joined") == u.date_joined, d);
        FUZZ_CHECK(or_empty(fields, "last_login") == u.last_login, d);
        if (u.token_key) {
            const std::string &key = *u.token_key;
            FUZZ_CHECK(!key.empty() && characters(key) <= 40 &&
                           !key_has_space_or_control(key),
                       d);
            FUZZ_CHECK(keys.insert(key).second, d);
            // The authtoken.token object with this key names this user.
            auto token =
                std::find_if(token_objects.begin(), token_objects.end(),
                             [&](const json *t) { return t->at("pk") == key; });
            FUZZ_CHECK(token != token_objects.end(), d);
            FUZZ_CHECK((*token)->at("fields").at("user") == u.uid, d);
            FUZZ_CHECK(or_empty((*token)->at("fields"), "created") ==
                           u.token_created,
                       d);
        } else {
            FUZZ_CHECK(u.token_created.empty(), d);
        }
    }
    FUZZ_CHECK(keys.size() == token_objects.size(), d);
}

// The records as dumpdata would write them; tokens first and users in
// reverse order, which the format allows.
std::string write_dumpdata(const std::vector<ImportedUser> &users)
{
    json out = json::array();
    for (const ImportedUser &u : users) {
        if (u.token_key) {
            out.push_back(
                {{"model", "authtoken.token"},
                 {"pk", *u.token_key},
                 {"fields", {{"user", u.uid}, {"created", u.token_created}}}});
        }
    }
    for (auto it = users.rbegin(); it != users.rend(); ++it) {
        const ImportedUser &u = *it;
        json fields = {{"password", u.password},
                       {"last_login", u.last_login.empty()
                                          ? json(nullptr)
                                          : json(u.last_login)},
                       {"is_superuser", u.is_superuser},
                       {"username", u.username},
                       {"email", u.email},
                       {"is_staff", u.is_staff},
                       {"is_active", u.is_active},
                       {"date_joined", u.date_joined},
                       {"groups", json::array()}};
        out.push_back(
            {{"model", "auth.user"}, {"pk", u.uid}, {"fields", fields}});
    }
    return out.dump(2);
}

bool same(const ImportedUser &a, const ImportedUser &b)
{
    return a.uid == b.uid && a.username == b.username &&
           a.password == b.password && a.is_active == b.is_active &&
           a.is_staff == b.is_staff && a.is_superuser == b.is_superuser &&
           a.email == b.email && a.date_joined == b.date_joined &&
           a.last_login == b.last_login && a.token_key == b.token_key &&
           a.token_created == b.token_created;
}

void check_round_trip(const std::string &text,
                      const std::vector<ImportedUser> &users)
{
    std::string again = write_dumpdata(users);
    const std::string d = describe(text, "written back as " + again);
    std::vector<ImportedUser> reread;
    try {
        reread = authtoken::parse_django_dumpdata(again);
    } catch (const authtoken::DumpdataError &e) {
        fuzz::fail("the written-back file was refused", d + "\n" + e.what());
    }
    FUZZ_CHECK(reread.size() == users.size(), d);
    for (const ImportedUser &u : users) {
        auto match =
            std::find_if(reread.begin(), reread.end(),
                         [&](const ImportedUser &r) { return r.uid == u.uid; });
        FUZZ_CHECK(match != reread.end() && same(*match, u), d);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data,
                                      std::size_t size)
{
    const std::string text(reinterpret_cast<const char *>(data), size);
    std::vector<ImportedUser> users;
    try {
        users = authtoken::parse_django_dumpdata(text);
    } catch (const authtoken::DumpdataError &e) {
        check_refusal(text, e.what());
        return 0;
    } catch (const nlohmann::json::out_of_range &e) {
        if (AUTHTOKEN_FUZZ_CHECK_NUMBER_OVERFLOW || e.id != 406) {
            fuzz::fail("parse_django_dumpdata threw something else",
                       describe(text, e.what()));
        }
        return 0;
    } catch (const std::exception &e) {
        fuzz::fail("parse_django_dumpdata threw something else",
                   describe(text, e.what()));
    }
    check_records(text, users);
    check_round_trip(text, users);
    return 0;
}
