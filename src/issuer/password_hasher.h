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
// The fewest PBKDF2 iterations a new hash may use (Django 4.2's default,
// OWASP's 2023 figure for PBKDF2-HMAC-SHA256), unless the policy says
// allow_insecure_iterations (test suites only).
inline constexpr unsigned kMinPbkdf2Iterations = 600'000;

// Bounds on what a stored argon2 hash may ask for, checked before any
// work, at import time (classify_password) and at every login: a stored
// hash is data, and argon2's own limits allow 4 GiB and 2^24 lanes. The
// caps leave room for Django's default (m=102400, t=2, p=8) tuned up a
// little, not for gigabytes: m <= 256 MiB, t <= 16, p <= 16, and m x t
// <= 4 x Django's default. argon2 always runs with one thread here, so
// p only splits the memory into lanes and never starts threads.
inline constexpr unsigned kMaxArgon2MemoryKiB = 256 * 1024;
inline constexpr unsigned kMaxArgon2TimeCost = 16;
inline constexpr unsigned kMaxArgon2Parallelism = 16;
inline constexpr unsigned long long kMaxArgon2Work = 102400ULL * 2 * 4;

// The hasher new passwords (and upgraded ones) are encoded with, as the
// first entry of Django's PASSWORD_HASHERS.
enum class Hasher {
    pbkdf2_sha256, // PBKDF2PasswordHasher, Django's default
    argon2id,      // Argon2PasswordHasher (argon2-cffi's encoding)
};

struct HasherPolicy {
    // For new pbkdf2_sha256 hashes: at least kMinPbkdf2Iterations (Django
    // 4.2+'s 600000) unless allow_insecure_iterations, at most
    // kMaxPbkdf2Iterations. The functions below that take a policy throw
    // std::invalid_argument otherwise.
    unsigned pbkdf2_iterations = 600000;
    // Lets pbkdf2_iterations go below kMinPbkdf2Iterations, down to 1: the
    // setting insecure_test_hashing, for test suites only.
    bool allow_insecure_iterations = false;
    Hasher hasher = Hasher::pbkdf2_sha256;
    // For new argon2id hashes: Django's Argon2PasswordHasher defaults
    // (memory in KiB). Must be within the caps above.
    unsigned argon2_memory_kib = 102400;
    unsigned argon2_time_cost = 2;
    unsigned argon2_parallelism = 8;
};

// Throws std::invalid_argument when the policy is outside the bounds
// above (the settings check it with this at startup).
void check_policy(const HasherPolicy &policy);

// Encodes `raw` with the policy's hasher: "pbkdf2_sha256$<iter>$<salt>$<b64>"
// or "argon2$argon2id$v=19$m=<KiB>,t=<n>,p=<n>$<salt b64>$<hash b64>" (the
// salt 22 characters from [a-zA-Z0-9] drawn from OpenSSL's CSPRNG, as
// Django's salt(); argon2's hash 32 bytes, as argon2-cffi's default).
// Throws std::runtime_error if OpenSSL or libargon2 fails.
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

// Django's must_update(), upwards only: true when a successful login should
// re-hash `encoded` with the policy's hasher: another algorithm, fewer
// pbkdf2 iterations or a weaker argon2 (time or memory) than the policy, a
// short salt. Never for a stored hash stronger than the policy (Django
// would re-hash it down). False for anything check_password() can never
// match.
bool must_update(std::string_view encoded, const HasherPolicy &policy);

// What a stored password is, without checking any password against it:
// for import (which refuses over_work_bounds and counts unknown_format) and
// for the login log line's reason.
enum class PasswordFormat {
    usable,           // a hash check_password() can match
    unusable,         // "!...", Django's set_unusable_password()
    empty,            // "": never matches (Django: not usable either way)
    over_work_bounds, // a known hasher asking for more than the caps above
    unsupported,      // a Django hasher this issuer does not implement
                      // (md5, sha1, scrypt, crypt, unsalted_*)
    unknown_format,   // no hasher's format: plain text, most likely
    malformed,        // a known hasher's name with a broken encoding
};
PasswordFormat classify_password(std::string_view encoded);
// "usable", "unusable password", ... for log lines and import reports.
const char *describe(PasswordFormat format);

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
    // with `matched`, and never for a legacy plain-bcrypt match of a
    // password over 72 bytes (bcrypt read only its first 72: re-hashing
    // all that was typed would make the typed tail part of the password).
    bool must_update = false;
};

// The login flow calls this (not check_password + must_update): it is the
// only entry that knows both the typed password and the stored hash, which
// the upgrade rules need.
//
// Django 4.2+'s verify_password(): the login-time check, with Django's
// timing equalisation around check_password(). An unusable, unknown or
// malformed encoding runs the dummy check; a wrong password against a
// pbkdf2_sha256 hash with fewer iterations than the policy runs the missing
// iterations (Django's harden_runtime), so neither answers faster than a
// check with the current default.
PasswordVerdict verify_password(std::string_view raw, std::string_view encoded,
                                const HasherPolicy &policy);

} // namespace authtoken::passwords
