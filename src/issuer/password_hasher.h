// Django-compatible password hashing (django.contrib.auth.hashers), so that
// users imported from Django keep logging in with their passwords.
#pragma once

#include <string>
#include <string_view>

namespace authtoken::passwords {

struct HasherPolicy {
    // Django 4.2+/5 default is 600000 for pbkdf2_sha256; tests may use fewer.
    unsigned pbkdf2_iterations = 600000;
};

// Encodes `raw` with the current default: "pbkdf2_sha256$<iter>$<salt>$<b64>",
// salt of 22 characters from [a-zA-Z0-9] drawn from OpenSSL's CSPRNG.
std::string make_password(std::string_view raw, const HasherPolicy &policy);

// Django's unusable password: "!" followed by 40 random characters.
std::string make_unusable_password();

// True when `encoded` is a usable password that matches `raw`. Supports
// pbkdf2_sha256, pbkdf2_sha1, argon2 (argon2id/argon2i/argon2d in Django's
// "argon2$argon2id$v=19$m=..,t=..,p=..$salt$hash" form) and bcrypt_sha256.
// Unusable ("!..."), empty, unknown or malformed encodings never match.
// Comparisons are constant-time.
bool check_password(std::string_view raw, std::string_view encoded);

// Django's must_update(): true when a successful login should re-hash
// `encoded` with the current default (other algorithm, fewer iterations).
bool must_update(std::string_view encoded, const HasherPolicy &policy);

bool is_password_usable(std::string_view encoded);

// Costs about as much as a real check with the current default, so that an
// unknown username takes as long as a wrong password (Django runs the
// default hasher once for the same reason).
void run_dummy_check(std::string_view raw, const HasherPolicy &policy);

} // namespace authtoken::passwords
