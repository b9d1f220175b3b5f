// Django-compatible password hashing (django.contrib.auth.hashers), so that
// users imported from Django keep logging in with their passwords.
#pragma once

#include <string>
#include <string_view>

namespace authtoken::passwords
{

// The most PBKDF2 iterations a stored hash may ask for (ten times Django
// 5.2's default). A stored hash is data: a corrupt or hostile one must not
// turn one login into minutes of CPU.
inline constexpr unsigned kMaxPbkdf2Iterations = 10'000'000;

struct HasherPolicy {
    // Django 4.2+/5 default is 600000 for pbkdf2_sha256; tests may use fewer.
    // Must be in [1, kMaxPbkdf2Iterations]: the functions below that take a
    // policy throw std::invalid_argument otherwise.
    unsigned pbkdf2_iterations = 600000;
};

// Encodes `raw` with the current default: "pbkdf2_sha256$<iter>$<salt>$<b64>",
// salt of 22 characters from [a-zA-Z0-9] drawn from OpenSSL's CSPRNG.
// Throws std::runtime_error if OpenSSL fails.
std::string make_password(std::string_view raw, const HasherPolicy &policy);

// Django's unusable password: "!" followed by 40 random characters.
std::string make_unusable_password();

// True when `encoded` is a usable password that matches `raw`. Supports
// pbkdf2_sha256, pbkdf2_sha1, argon2 (argon2id/argon2i/argon2d in Django's
// "argon2$argon2id$v=19$m=..,t=..,p=..$salt$hash" form) and bcrypt_sha256
// (and Django's legacy plain bcrypt).
// Unusable ("!..."), empty, unknown or malformed encodings never match.
// Comparisons are constant-time.
bool check_password(std::string_view raw, std::string_view encoded);

// Django's must_update(): true when a successful login should re-hash
// `encoded` with the current default (other algorithm, other iteration
// count, short salt). False for anything check_password() can never match.
bool must_update(std::string_view encoded, const HasherPolicy &policy);

// As Django: false only for the "!" prefix of make_unusable_password(). An
// empty string counts as usable, but check_password() never matches it.
bool is_password_usable(std::string_view encoded);

// Costs about as much as a real check with the current default, so that an
// unknown username takes as long as a wrong password (Django runs the
// default hasher once for the same reason).
void run_dummy_check(std::string_view raw, const HasherPolicy &policy);

struct PasswordVerdict {
    bool matched = false;
    // Re-hash with make_password() and store it. Only ever true together
    // with `matched`.
    bool must_update = false;
};

// Django 4.2+'s verify_password(): the login-time check, with Django's
// timing equalisation around check_password(). An unusable, unknown or
// malformed encoding runs the dummy check; a wrong password against a
// pbkdf2_sha256 hash with fewer iterations than the policy runs the missing
// iterations (Django's harden_runtime), so neither answers faster than a
// check with the current default.
PasswordVerdict verify_password(std::string_view raw, std::string_view encoded,
                                const HasherPolicy &policy);

} // namespace authtoken::passwords
